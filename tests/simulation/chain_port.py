"""The chain the simulated world drives, as a small protocol, and its first implementation on a real anvil.

The world needs five levers and one truth from a chain; the simulated EVM node (``tests/simulation``'s node,
built on branch i16-simnode) is to satisfy the same ``SimChain`` protocol, and anvil keeps doing so as the
reference. Everything here is synchronous: the world calls it through ``asyncio.to_thread``.

- levers: ``fund_native``/``fund_token`` (a transfer from the faucet into the mempool), ``mine(n)``,
  ``reorg(depth)`` (the last ``depth`` blocks replaced by empty ones: what they held is dropped for good),
  ``head()``;
- truth: ``canonical()``, every successful value movement in the canonical chain (``ChainMove``), read
  block by block from the node itself, so the oracles judge Teller against the chain and not against
  what Teller believes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from teller.chain.anvil import AnvilProcess
from teller.chain.devchain import FAUCET_ADDRESS, DevChain

__all__ = ["BLOCKED_RECIPIENT", "HOT_TOKEN_MINOR", "HOT_WALLET", "SETUP_BLOCKS", "TRANSFER_TOPIC", "AnvilChain", "ChainMove", "SimChain"]

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
HOT_WALLET = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # index 0 of the test mnemonic: Teller's hot wallet
FAUCET_TOKEN_MINOR = 10**15
HOT_TOKEN_MINOR = 10**13
SETUP_BLOCKS = 4
BLOCKED_RECIPIENT = "0x" + "33" * 20


@dataclass(frozen=True)
class ChainMove:
    """One successful movement of value in a canonical block: a native transfer (``log_index`` -1) or a
    token Transfer log. ``nonce`` is the sending transaction's nonce."""

    tx_hash: str
    log_index: int
    asset: str          # "ETH" or "USDT"
    sender: str
    to: str
    amount_minor: int
    block_number: int
    nonce: int


class SimChain(Protocol):
    url: str
    chain_id: int
    token: str
    threaded: bool  # True: its levers block (call them in a thread); False: call them on the loop

    async def open(self) -> None: ...
    async def aclose(self) -> None: ...
    def heal(self) -> None: ...
    @property
    def faults(self) -> list[str]: ...

    def fund_native(self, to: str, amount_wei: int) -> str: ...
    def fund_token(self, to: str, amount_minor: int) -> str: ...
    def mine(self, blocks: int = 1) -> None: ...
    def reorg(self, depth: int) -> None: ...
    def head(self) -> int: ...
    def canonical(self) -> list[ChainMove]: ...
    def sent_nonces(self, sender: str) -> list[int]: ...
    def close(self) -> None: ...


class AnvilChain:
    """A fresh anvil (automine off) with the demo token; the faucet funds users, index 0 is the hot wallet."""

    threaded = True
    faults: ClassVar[list[str]] = []  # anvil has no fault plan

    def __init__(self, chain_id: int = 31337) -> None:
        self._anvil = AnvilProcess(chain_id=chain_id).start()
        self.url = self._anvil.url
        self.chain_id = chain_id
        self._dev: DevChain = self._anvil.dev
        self.token = self._dev.deploy_demo_token()
        self._dev.mint(self.token, to=FAUCET_ADDRESS, amount_minor=FAUCET_TOKEN_MINOR)
        self._dev.send_token(self.token, to=HOT_WALLET, amount_minor=HOT_TOKEN_MINOR)
        self._dev.set_blocked(self.token, BLOCKED_RECIPIENT, True)  # token payments to it revert: refunds
        self._dev.set_automine(False)  # from here on, blocks come when the world mines them
        self._scanned: dict[int, tuple[str, list[ChainMove]]] = {}  # block -> (hash, moves): blocks are immutable

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def heal(self) -> None:
        pass

    def fund_native(self, to: str, amount_wei: int) -> str:
        return self._dev.send_native(to=to, amount_wei=amount_wei, wait=False)

    def fund_token(self, to: str, amount_minor: int) -> str:
        return self._dev.send_token(self.token, to=to, amount_minor=amount_minor, wait=False)

    def mine(self, blocks: int = 1) -> None:
        self._dev.mine(blocks)

    def reorg(self, depth: int) -> None:
        depth = min(depth, self.head() - SETUP_BLOCKS)  # never below the token's deployment and funding
        if depth > 0:
            self._dev.reorg(depth)

    def head(self) -> int:
        return self._dev.block_number()

    def canonical(self) -> list[ChainMove]:
        moves: list[ChainMove] = []
        for number in range(self.head() + 1):
            block = self._dev.rpc("eth_getBlockByNumber", hex(number), True)
            cached = self._scanned.get(number)
            if cached is None or cached[0] != block["hash"]:
                cached = (block["hash"], self._moves_of(block))
                self._scanned[number] = cached
            moves.extend(cached[1])
        return moves

    def sent_nonces(self, sender: str) -> list[int]:
        count = int(self._dev.rpc("eth_getTransactionCount", sender, "latest"), 16)
        return list(range(count))

    def _moves_of(self, block: dict) -> list[ChainMove]:  # type: ignore[type-arg]
        moves: list[ChainMove] = []
        number = int(block["number"], 16)
        for tx in block["transactions"]:
            receipt = self._dev.rpc("eth_getTransactionReceipt", tx["hash"])
            if receipt is None or receipt["status"] != "0x1":
                continue
            sender, nonce = tx["from"].lower(), int(tx["nonce"], 16)
            value = int(tx["value"], 16)
            if value and tx.get("to"):
                moves.append(ChainMove(tx["hash"].lower(), -1, "ETH", sender, tx["to"].lower(), value, number, nonce))
            for log in receipt["logs"]:
                topics = log["topics"]
                if log["address"].lower() == self.token and len(topics) == 3 and topics[0] == TRANSFER_TOPIC:
                    moves.append(ChainMove(tx["hash"].lower(), int(log["logIndex"], 16), "USDT",
                                           "0x" + topics[1][-40:], "0x" + topics[2][-40:],
                                           int(log["data"], 16), number, nonce))
        return moves

    def close(self) -> None:
        self._anvil.stop()
