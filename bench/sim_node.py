"""Simulated EVM node benchmark (issue 16): how much simulated chain work a wall second buys. Figures to watch.

  A  unsigned transactions (``SimNode.submit``: an impersonated sender, no signature) mined in blocks of
     TXS_PER_BLOCK, half native, half token transfers: transactions/s and blocks/s of the Python API.
  B  empty blocks: ``mine(EMPTY_BLOCKS)`` blocks/s (the floor of a run that mostly waits for confirmations).
  C  signed raw transactions (``submit_raw``: RLP decode + sender recovery, coincurve when installed).
  D  reorgs of depth REORG_DEPTH with every old transaction re-included: reorgs/s.
  E  over JSON-RPC through Teller's ``ChainClient``: full blocks fetched with ``get_blocks`` (batches of
     100), blocks/s.

Usage: ``.venv/bin/python bench/sim_node.py`` (a few seconds).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/http.py would shadow the stdlib's http
else:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account
from eth_utils import keccak

from teller.chain.client import ChainClient
from teller.chain.erc20 import encode_transfer
from teller.chain.signing import sign_native_transfer
from tests.simulation import SimNode, SimRpcServer

TOKEN = "0x" + "70" * 20
SENDERS = 200
TXS_PER_BLOCK = 100
TX_BLOCKS = 200
EMPTY_BLOCKS = 100_000
SIGNED_TXS = 2_000
REORG_DEPTH = 10
REORGS = 200
RPC_BLOCKS = 2_000


def _node() -> SimNode:
    node = SimNode()
    node.add_token(TOKEN)
    return node


def _chain(*, senders_count: int, blocks: int) -> SimNode:
    """``blocks`` blocks, each with one native transfer from each of ``senders_count`` senders."""
    node = _node()
    senders = ["0x%040x" % (i + 1) for i in range(senders_count)]
    for sender in senders:
        node.fund(sender, 10**24)
    for _ in range(blocks):
        for sender in senders:
            node.submit(sender=sender, to=senders[0], value_wei=1)
        node.mine(1)
    return node


def bench_transactions() -> tuple[float, float]:
    node = _node()
    senders = ["0x%040x" % (i + 1) for i in range(SENDERS)]
    for sender in senders:
        node.fund(sender, 10**24)
        node.mint(TOKEN, sender, 10**15)
    started = time.perf_counter()
    for block in range(TX_BLOCKS):
        for i in range(TXS_PER_BLOCK):
            sender, to = senders[(block * TXS_PER_BLOCK + i) % SENDERS], senders[i % SENDERS]
            if i % 2:
                node.submit(sender=sender, to=TOKEN, data=encode_transfer(to, 5), gas=80_000)
            else:
                node.submit(sender=sender, to=to, value_wei=1)
        node.mine(1)
    elapsed = time.perf_counter() - started
    return TX_BLOCKS * TXS_PER_BLOCK / elapsed, TX_BLOCKS / elapsed


def bench_empty_blocks() -> float:
    node = _node()
    started = time.perf_counter()
    node.mine(EMPTY_BLOCKS)
    return EMPTY_BLOCKS / (time.perf_counter() - started)


def bench_signed() -> float:
    node = _node()
    key = Account.from_key(keccak(b"bench sim node"))
    node.fund(key.address, 10**24)
    raws = [sign_native_transfer(key, chain_id=31337, nonce=n, to="0x" + "b0" * 20, amount_wei=1,
                                 max_fee_per_gas_wei=3 * 10**9, max_priority_fee_per_gas_wei=10**8).raw
            for n in range(SIGNED_TXS)]
    started = time.perf_counter()
    for i, raw in enumerate(raws):
        node.submit_raw(raw)
        if i % 50 == 49:
            node.mine(1)  # the per-sender queue is bounded: keep the nonces flowing
    return SIGNED_TXS / (time.perf_counter() - started)


def bench_reorgs() -> float:
    node = _chain(senders_count=20, blocks=REORG_DEPTH)
    started = time.perf_counter()
    for _ in range(REORGS):
        old = {tx.tx_hash: offset for offset in range(REORG_DEPTH)
               for tx in node.block(node.head - REORG_DEPTH + 1 + offset).txs}  # type: ignore[union-attr]
        node.reorg(REORG_DEPTH, reinclude=old)
    return REORGS / (time.perf_counter() - started)


async def bench_rpc() -> float:
    node = _chain(senders_count=10, blocks=RPC_BLOCKS)
    async with SimRpcServer(node) as server, ChainClient(name="bench", rpc_url=server.url) as client:
        started = time.perf_counter()
        blocks = await client.get_blocks(list(range(1, RPC_BLOCKS + 1)))
        elapsed = time.perf_counter() - started
    assert all(b is not None and len(b.transactions) == 10 for b in blocks)
    return RPC_BLOCKS / elapsed


def main() -> None:
    txs_per_s, blocks_per_s = bench_transactions()
    print(f"A  {txs_per_s:,.0f} unsigned tx/s mined, {blocks_per_s:,.0f} blocks/s of {TXS_PER_BLOCK} txs")
    print(f"B  {bench_empty_blocks():,.0f} empty blocks/s")
    print(f"C  {bench_signed():,.0f} signed raw tx/s (decode + recover + mine)")
    print(f"D  {bench_reorgs():,.0f} reorgs/s of depth {REORG_DEPTH} re-including every transaction")
    print(f"E  {asyncio.run(bench_rpc()):,.0f} full blocks/s over JSON-RPC through ChainClient.get_blocks")


if __name__ == "__main__":
    main()
