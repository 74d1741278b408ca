"""Conformance: one scripted scenario against the simulated node and against a real anvil, through Teller's
own ``ChainClient`` and ``ChainReads``, and every answer Teller relies on compared.

Both chains start alike: fresh keys funded, the token at anvil's demo-token address, the base fee of every
mined block set to the same value first (anvil's own EIP-1559 arithmetic after a non-empty block differs
from the textbook formula by a few hundred wei; nothing in Teller depends on it). The transactions are
signed with fixed fees, so the same bytes go to both nodes and their hashes are compared exactly.

Compared exactly: send outcomes; tx hashes, senders, recipients, values, input, nonces, transaction
indexes; receipt status, ``effectiveGasPrice``, the gas of a native transfer (21,000), Transfer logs
(token, from, to, amount, log index, transaction index); balances and token balances; nonces at
``latest`` and ``pending``; block numbers, base fees and the chain of parent hashes; fee-history tips;
which lookups answer null or raise ``UnknownBlock``; where a reorg puts the transactions it mines again
(``anvil_reorg`` with transactions, ``SimNode.reorg(reinclude=...)``). Normalised: block hashes (each named by its height
relative to the start; after a reorg only "a new hash" is compared), timestamps (only that they do not go
backwards), the gas of a token call (only that it is positive and within the limit: anvil runs the real
bytecode), the node's words in a refusal (anvil says "transaction already imported" where geth says
"already known"; Teller's ``SendOutcome`` is what is compared).

Deliberate differences, not compared: a transaction whose max fee is below the base fee (anvil refuses it;
geth, and the simulator by default, keep it in the pool: the scenario runs the simulator with
``reject_below_base_fee=True``); a replacement that raises only the max fee (anvil takes it, geth and the
simulator want the tip raised too: the scenario raises both); ``eth_getTransactionByHash`` of a
transaction dropped by ``anvil_reorg`` (anvil keeps answering it as pending although its pool lost it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from eth_account import Account
from eth_utils import keccak

from teller.chain.client import FEE_HISTORY_BLOCKS, ChainClient
from teller.chain.devchain import FAUCET_ADDRESS
from teller.chain.erc20 import encode_transfer
from teller.chain.receipts import ChainReads
from teller.chain.signing import sign_eip1559, sign_native_transfer, sign_token_transfer
from teller.chain.types import Block, Receipt, SignedTx, TransferLog
from teller.errors import UnknownBlock
from tests.fixtures.chain import DevNet
from tests.simulation import SimNode, SimRpcServer

GWEI = 10**9
BASE_FEE_WEI = GWEI
MAX_FEE_WEI = 3 * GWEI
TIP_WEI = GWEI // 10
TOKEN_GAS = 120_000
SENDER = Account.from_key(keccak(b"teller sim conformance sender"))
PAUPER = Account.from_key(keccak(b"teller sim conformance pauper"))  # never funded
RECIPIENT = "0x" + keccak(b"teller sim conformance recipient")[-20:].hex()
OTHER = "0x" + keccak(b"teller sim conformance other")[-20:].hex()
SENDER_WEI = 10 * 10**18
SENDER_TOKEN_MINOR = 1_000 * 10**6


class Levers(Protocol):
    url: str

    async def fund(self, address: str, amount_wei: int) -> None: ...
    async def give_token(self, address: str, amount_minor: int) -> None: ...  # a faucet transfer, not mined
    async def mine(self) -> None: ...  # one block, at BASE_FEE_WEI
    async def spike_next_base_fee(self, fee_wei: int) -> None: ...
    async def reorg_dropping(self, depth: int) -> None: ...  # new hashes, the old branch's transactions gone
    # new hashes; each of ``placed`` mined again in the new block at its offset, the rest of the old branch gone
    async def reorg_placing(self, depth: int, placed: list[tuple[SignedTx, int]]) -> None: ...


class AnvilLevers:
    def __init__(self, devnet: DevNet) -> None:
        self.url, self._dev, self._token = devnet.url, devnet.dev, devnet.token

    async def fund(self, address: str, amount_wei: int) -> None:
        await asyncio.to_thread(self._dev.set_balance, address, amount_wei)

    async def give_token(self, address: str, amount_minor: int) -> None:
        token = self._token
        await asyncio.to_thread(lambda: self._dev.send_token(token, to=address, amount_minor=amount_minor, wait=False))

    async def mine(self) -> None:
        await asyncio.to_thread(self._dev.rpc, "anvil_setNextBlockBaseFeePerGas", hex(BASE_FEE_WEI))
        await asyncio.to_thread(self._dev.mine, 1)

    async def spike_next_base_fee(self, fee_wei: int) -> None:
        await asyncio.to_thread(self._dev.rpc, "anvil_setNextBlockBaseFeePerGas", hex(fee_wei))

    async def reorg_dropping(self, depth: int) -> None:
        await asyncio.to_thread(self._dev.reorg, depth)

    async def reorg_placing(self, depth: int, placed: list[tuple[SignedTx, int]]) -> None:
        pairs = [["0x" + tx.raw.hex(), offset] for tx, offset in placed]
        await asyncio.to_thread(self._dev.rpc, "anvil_reorg", depth, pairs)


class SimLevers:
    def __init__(self, node: SimNode, url: str, token: str) -> None:
        self.url, self._node, self._token = url, node, token

    async def fund(self, address: str, amount_wei: int) -> None:
        self._node.fund(address, amount_wei - self._node.balance(address))

    async def give_token(self, address: str, amount_minor: int) -> None:
        self._node.submit(sender=FAUCET_ADDRESS, to=self._token, data=encode_transfer(address, amount_minor),
                          gas=TOKEN_GAS)

    async def mine(self) -> None:
        self._node.set_next_base_fee(BASE_FEE_WEI)
        self._node.mine(1)

    async def spike_next_base_fee(self, fee_wei: int) -> None:
        self._node.set_next_base_fee(fee_wei)

    async def reorg_dropping(self, depth: int) -> None:
        old = [tx.tx_hash for n in range(self._node.head - depth + 1, self._node.head + 1)
               for tx in self._node.block(n).txs]  # type: ignore[union-attr]
        self._node.reorg(depth, drop=old)

    async def reorg_placing(self, depth: int, placed: list[tuple[SignedTx, int]]) -> None:
        reinclude = {tx.tx_hash: offset for tx, offset in placed}
        old = [tx.tx_hash for n in range(self._node.head - depth + 1, self._node.head + 1)
               for tx in self._node.block(n).txs if tx.tx_hash not in reinclude]  # type: ignore[union-attr]
        self._node.reorg(depth, reinclude=reinclude, drop=old)


class Record:
    """What Teller saw, step by step, with block hashes named by height relative to the start."""

    def __init__(self, client: ChainClient) -> None:
        self.client = client
        self.start = 0
        self.steps: list[tuple[str, Any]] = []
        self._names: dict[str, str] = {}

    def see(self, label: str, value: Any) -> None:
        self.steps.append((label, value))

    async def name_blocks(self) -> None:
        head = await self.client.block_number()
        for block in await self.client.get_blocks(list(range(self.start, head + 1)), full_transactions=False):
            assert block is not None
            self._names.setdefault(block.block_hash, f"block+{block.number - self.start}")

    def block_name(self, block_hash: str | None) -> str | None:
        return None if block_hash is None else self._names.get(block_hash, "unnamed")

    def rel(self, number: int | None) -> int | None:
        return None if number is None else number - self.start

    def log(self, log: TransferLog) -> tuple[Any, ...]:
        return (log.token, log.from_address, log.to_address, log.amount_minor, log.tx_hash, log.log_index,
                self.rel(log.block_number), self.block_name(log.block_hash), log.transaction_index, log.removed)

    def receipt(self, receipt: Receipt | None) -> Any:
        if receipt is None:
            return None
        native = receipt.to_address == RECIPIENT
        gas = receipt.gas_used if native else 0 < receipt.gas_used <= TOKEN_GAS
        return (receipt.tx_hash, self.rel(receipt.block_number), self.block_name(receipt.block_hash),
                receipt.succeeded, gas, receipt.effective_gas_price_wei, receipt.from_address, receipt.to_address,
                receipt.contract_address, tuple(self.log(log) for log in receipt.transfer_logs))

    def block(self, block: Block | None) -> Any:
        if block is None:
            return None
        txs = tuple((t.tx_hash, t.from_address, t.to_address, t.value_wei, t.input, t.nonce, self.rel(t.block_number),
                     self.block_name(t.block_hash), t.transaction_index) for t in block.transactions)
        return (self.rel(block.number), self.block_name(block.block_hash), self.block_name(block.parent_hash),
                block.base_fee_per_gas_wei, txs)


def _native(nonce: int, amount_wei: int, *, fee: int = MAX_FEE_WEI, tip: int = TIP_WEI) -> Any:
    return sign_native_transfer(SENDER, chain_id=31337, nonce=nonce, to=RECIPIENT, amount_wei=amount_wei,
                                max_fee_per_gas_wei=fee, max_priority_fee_per_gas_wei=tip)


def _token(token: str, nonce: int, amount_minor: int) -> Any:
    return sign_token_transfer(SENDER, chain_id=31337, nonce=nonce, token=token, to=RECIPIENT,
                               amount_minor=amount_minor, gas=TOKEN_GAS, max_fee_per_gas_wei=MAX_FEE_WEI,
                               max_priority_fee_per_gas_wei=TIP_WEI)


async def _raises_unknown_block(call: Callable[[], Awaitable[Any]]) -> bool:
    try:
        await call()
    except UnknownBlock:
        return True
    return False


async def scenario(levers: Levers, token: str) -> list[tuple[str, Any]]:
    async with ChainClient(name="conformance", rpc_url=levers.url, timeout_s=5.0) as client:
        reads = ChainReads(name="conformance", rpc_url=levers.url, timeout_s=5.0)
        seen = Record(client)
        try:
            await _run(levers, token, client, reads, seen)
        finally:
            await reads.close()
        return seen.steps


async def _run(levers: Levers, token: str, client: ChainClient, reads: ChainReads, seen: Record) -> None:
    send = client.send_raw_transaction
    await levers.fund(SENDER.address, SENDER_WEI)
    await levers.give_token(SENDER.address, SENDER_TOKEN_MINOR)
    for _ in range(FEE_HISTORY_BLOCKS):  # the set-up's faucet transfer differs: keep it out of fee history
        await levers.mine()
    seen.start = await client.block_number()
    seen.see("chain id", await client.chain_id())
    seen.see("token balance after set-up", await client.get_token_balance(token=token, owner=SENDER.address))

    native, token_ok = _native(0, 25 * 10**16), _token(token, 1, 12_500_000)
    token_revert = _token(token, 2, SENDER_TOKEN_MINOR + 1)  # above the balance: the token reverts
    first, underpriced, replacement = _native(3, 1), _native(3, 2), _native(3, 3, fee=MAX_FEE_WEI * 12 // 10,
                                                                            tip=TIP_WEI * 12 // 10)
    seen.see("send native", (await send(native.raw)).outcome)
    seen.see("send again (pending)", (await send(native.raw)).outcome)
    seen.see("send token", (await send(token_ok.raw)).outcome)
    seen.see("send reverting token", (await send(token_revert.raw)).outcome)
    seen.see("send nonce 3", (await send(first.raw)).outcome)
    seen.see("same fees, other content", (await send(underpriced.raw)).outcome)
    seen.see("replacement at +20 %", (await send(replacement.raw)).outcome)
    poor = sign_native_transfer(PAUPER, chain_id=31337, nonce=0, to=RECIPIENT, amount_wei=1,
                                max_fee_per_gas_wei=MAX_FEE_WEI, max_priority_fee_per_gas_wei=TIP_WEI)
    seen.see("no funds", (await send(poor.raw)).outcome)
    other_chain = sign_eip1559(SENDER, chain_id=5, nonce=4, to=RECIPIENT, value_wei=1, gas=21_000,
                               max_fee_per_gas_wei=MAX_FEE_WEI, max_priority_fee_per_gas_wei=TIP_WEI)
    seen.see("other chain id", (await send(other_chain.raw)).outcome)
    seen.see("nonces before mining", (await client.get_nonce(SENDER.address),
                                      await client.get_nonce(SENDER.address, pending=True)))
    pending = await client.get_transaction(native.tx_hash)
    seen.see("pending tx", pending and (pending.tx_hash, pending.nonce, pending.block_number, pending.block_hash))
    seen.see("receipt before mining", await client.get_receipt(native.tx_hash))

    await levers.mine()
    await seen.name_blocks()
    mined = seen.start + 1
    seen.see("head", seen.rel(await client.block_number()))
    seen.see("nonces after mining", (await client.get_nonce(SENDER.address),
                                     await client.get_nonce(SENDER.address, pending=True)))
    for name, tx in (("native", native), ("token", token_ok), ("reverted", token_revert),
                     ("replaced", first), ("replacement", replacement)):
        seen.see(f"receipt {name}", seen.receipt(await client.get_receipt(tx.tx_hash)))
        found = await client.get_transaction(tx.tx_hash)
        seen.see(f"tx {name}", found and (found.tx_hash, found.nonce, seen.rel(found.block_number),
                                          seen.block_name(found.block_hash), found.transaction_index))
    seen.see("send mined again", (await send(native.raw)).outcome)
    seen.see("nonce reused", (await send(_native(0, 7).raw)).outcome)
    seen.see("block full", seen.block(await client.get_block(mined)))
    seen.see("block header", seen.block(await client.get_block(mined, full_transactions=False)))
    seen.see("blocks batch", [seen.block(b) for b in await client.get_blocks([seen.start, mined, mined + 1], full_transactions=False)])
    by_hash = await client.get_block(mined)
    assert by_hash is not None
    seen.see("block by hash", seen.block(await client.get_block_by_hash(by_hash.block_hash)))
    seen.see("block past head", await client.get_block(mined + 5))
    seen.see("balances", (await client.get_balance(RECIPIENT),
                          await client.get_token_balance(token=token, owner=RECIPIENT),
                          await client.get_token_balance(token=token, owner=SENDER.address)))
    span = {"tokens": [token], "from_block": mined, "to_block": mined}
    seen.see("logs to recipient", [seen.log(x) for x in await client.get_transfer_logs(**span, to_addresses=[RECIPIENT])])
    seen.see("logs to other", [seen.log(x) for x in await client.get_transfer_logs(**span, to_addresses=[OTHER])])
    seen.see("logs unfiltered", [seen.log(x) for x in await client.get_transfer_logs(**span)])
    seen.see("logs of another token", await client.get_transfer_logs(tokens=[OTHER], from_block=seen.start,
                                                                       to_block=mined))
    seen.see("logs by hash", {seen.block_name(h): [seen.log(x) for x in logs] for h, logs in (
        await client.get_transfer_logs_by_block_hashes(tokens=[token], block_hashes=[by_hash.block_hash],
                                                       to_addresses=[RECIPIENT])).items()})
    seen.see("logs by unknown hash", await _raises_unknown_block(
        lambda: client.get_transfer_logs_by_block_hash(tokens=[token], block_hash="0x" + "ab" * 32)))
    hashes = [native.tx_hash, token_ok.tx_hash, token_revert.tx_hash, first.tx_hash, "0x" + "cd" * 32]
    seen.see("reads receipts", {h: r and (seen.receipt(r.receipt), tuple(seen.log(x) for x in r.transfers))
                                for h, r in (await reads.receipts(hashes)).items()})
    seen.see("reads transactions", {h: t and (t.nonce, seen.rel(t.block_number), t.transaction_index)
                                    for h, t in (await reads.transactions(hashes)).items()})
    seen.see("reads mined counts", await reads.mined_counts([SENDER.address, RECIPIENT]))
    fees = await client.suggest_fees(max_fee_per_gas_cap_wei=100 * GWEI)
    seen.see("suggested tip", fees.max_priority_fee_per_gas_wei)
    history = await (await client.web3()).eth.fee_history(2, mined, [10, 50, 95])
    seen.see("fee history", (history["oldestBlock"] - seen.start, history["baseFeePerGas"][:2], history["reward"]))

    # a fee spike: anvil refuses a max fee below the next base fee (the simulator runs in that mode here)
    await levers.spike_next_base_fee(100 * GWEI)
    seen.see("below the base fee", (await send(_native(4, 1).raw)).outcome)
    await levers.mine()

    # a reorg of depth 1 that drops the block's transaction for good
    dropped = _native(4, 5)
    seen.see("send before reorg", (await send(dropped.raw)).outcome)
    await levers.mine()
    head = await client.block_number()
    old_block = await client.get_block(head)
    assert old_block is not None
    seen.see("mined before reorg", seen.receipt(await client.get_receipt(dropped.tx_hash)) is not None)
    await levers.reorg_dropping(1)
    new_block = await client.get_block(head)
    seen.see("reorg keeps the height", seen.rel(await client.block_number()))
    seen.see("reorg: a new hash, same parent", new_block is not None and new_block.block_hash != old_block.block_hash
             and new_block.parent_hash == old_block.parent_hash and new_block.transactions == ())
    seen.see("reorg: old hash unknown", (await client.get_block_by_hash(old_block.block_hash),
                                         await _raises_unknown_block(lambda: client.get_transfer_logs_by_block_hash(
                                             tokens=[token], block_hash=old_block.block_hash))))
    seen.see("reorg: receipt gone", await client.get_receipt(dropped.tx_hash))
    seen.see("reorg: nonces", (await client.get_nonce(SENDER.address),
                               await client.get_nonce(SENDER.address, pending=True)))
    await levers.mine()
    seen.see("reorg: never mined after", await client.get_receipt(dropped.tx_hash))

    # a reorg of depth 2 that mines both again a block later
    moved_native, moved_token = _native(4, 11), _token(token, 5, 1_000_000)
    for tx in (moved_native, moved_token):
        await send(tx.raw)
    await levers.mine()
    await levers.mine()
    await levers.reorg_placing(2, [(moved_native, 1), (moved_token, 1)])
    await seen.name_blocks()
    for name, tx in (("moved native", moved_native), ("moved token", moved_token)):
        seen.see(f"receipt {name}", seen.receipt(await client.get_receipt(tx.tx_hash)))
    head = await client.block_number()
    seen.see("moved: blocks", [seen.block(b) for b in await client.get_blocks([head - 1, head])])
    seen.see("moved: logs", [seen.log(x) for x in await client.get_transfer_logs(
        tokens=[token], from_block=head - 1, to_block=head, to_addresses=[RECIPIENT])])
    seen.see("moved: nonces and balances", (await client.get_nonce(SENDER.address),
                                            await client.get_nonce(SENDER.address, pending=True),
                                            await client.get_balance(RECIPIENT),
                                            await client.get_token_balance(token=token, owner=RECIPIENT)))


async def test_simulated_node_answers_teller_as_anvil_does(devnet: DevNet) -> None:
    devnet.dev.set_automine(False)  # the fixture switches it back on
    on_anvil = await scenario(AnvilLevers(devnet), devnet.token)

    node = SimNode(chain_id=devnet.chain_id, base_fee_wei=BASE_FEE_WEI, reject_below_base_fee=True)
    node.add_token(devnet.token)
    node.fund(FAUCET_ADDRESS, 10**30)
    node.mint(devnet.token, FAUCET_ADDRESS, 10**15)
    async with SimRpcServer(node) as server:
        on_sim = await scenario(SimLevers(node, server.url, devnet.token), devnet.token)

    assert [label for label, _ in on_sim] == [label for label, _ in on_anvil]
    differences = [(label, sim, anvil) for (label, sim), (_, anvil) in zip(on_sim, on_anvil) if sim != anvil]
    assert differences == [], "\n".join(f"{label}:\n  sim:   {sim}\n  anvil: {anvil}" for label, sim, anvil in differences)
