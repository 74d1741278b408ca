"""``SimNode``: a deterministic in-memory EVM chain for the money-path simulator.

It models what Teller touches and nothing else: accounts and natively modelled ERC-20 tokens
(``tests.simulation.evm_state``: a transfer above the balance reverts, status 0, no log), a mempool,
blocks with EIP-1559 base fees, receipts and Transfer logs. There is no wall clock: blocks are
mined only by ``mine(n)``, and every answer is a function of the driver's calls, so one seed replays one
run. ``tests.simulation.evm_rpc.SimRpcServer`` serves it as JSON-RPC; the driver (and the oracles) use
this Python API directly.

Driver API (all synchronous, no I/O):

- set-up: ``fund(address, wei)``, ``add_token(address)``, ``mint(token, address, amount_minor)`` (state
  changes outside any block, like ``anvil_setBalance``).
- transactions: ``submit_raw(raw) -> tx_hash`` (real signed bytes, sender recovered; raises ``TxRejected``
  with geth's words: "nonce too low", "already known", "replacement transaction underpriced",
  "insufficient funds for gas * price + value", ...); ``submit(sender=..., to=..., ...)`` the same for an
  unsigned transaction from any address (an impersonated account: fast, no signature);
  ``drop_pending(tx_hash)`` (the pool silently loses it).
- the clock: ``mine(n)``; ``set_next_base_fee(wei)`` (a spike: a transaction whose max fee is below the
  base fee waits in the pool, as in geth; ``reject_below_base_fee=True`` refuses it, as anvil does);
  ``reorg(depth, reinclude=..., drop=..., length=...)``.
- truth: ``head``, ``block(n)``, ``block_by_hash(h)``, ``balance``, ``token_balance``, ``nonce``,
  ``pending_nonce``, ``pending()``, ``transaction``, ``receipt``, ``tx_status`` (``TxStatus``),
  ``transfers(to=..., min_confirmations=...)``, ``nonces_used(sender)``, ``canonical_receipts()``.

Replacement (same sender and nonce) follows geth: both the max fee and the tip at least 10 % higher
(anvil only asks for a higher max fee). A mined transaction sent again is "nonce too low", as both answer.
Block selection: executable transactions by tip, then arrival; each sender's in nonce order.

Not thread-safe: call it from the thread whose event loop serves it (``SimRpcServer``), never from
``asyncio.to_thread``.

Bounds: ``pool_max`` (default ``POOL_MAX``) transactions in the pool, ``POOL_QUEUED_PER_SENDER_MAX`` ahead
of a sender's nonce, ``REORG_DEPTH_MAX`` (older blocks' undo journals are freed), ``BLOCKS_MAX``; past them
the node refuses as a real one does ("txpool is full") or the driver's call fails (``SimLimit``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from eth_utils import keccak

from tests.simulation.evm_state import WorldState
from tests.simulation.evm_types import (
    SimBlock,
    SimReceipt,
    SimTx,
    Transfer,
    TxRejected,
    TxStatus,
    decode_raw_transaction,
    intrinsic_gas,
)

__all__ = [
    "BLOCKS_MAX",
    "GAS_LIMIT",
    "POOL_MAX",
    "REORG_DEPTH_MAX",
    "SimLimit",
    "SimNode",
]

GAS_LIMIT = 30_000_000
ELASTICITY = 2
BASE_FEE_CHANGE_DENOMINATOR = 8
INITIAL_BASE_FEE_WEI = 1_000_000_000
BLOCK_TIME_S = 12
GENESIS_TIMESTAMP_S = 1_700_000_000
POOL_MAX = 10_000
POOL_QUEUED_PER_SENDER_MAX = 64  # geth's AccountQueue
REPLACEMENT_BUMP_PERCENT = 10  # geth's PriceBump
REORG_DEPTH_MAX = 256
BLOCKS_MAX = 2_000_000


class SimLimit(Exception):
    """The driver asked for more than the node's bounds (a deeper reorg, more blocks)."""


class SimNode:
    def __init__(self, *, chain_id: int = 31337, base_fee_wei: int = INITIAL_BASE_FEE_WEI,
                 block_time_s: int = BLOCK_TIME_S, reject_below_base_fee: bool = False,
                 pool_max: int = POOL_MAX) -> None:
        self.chain_id = chain_id
        self.pool_max = pool_max
        # geth keeps a transaction whose max fee is below the base fee in its pool until the fee falls;
        # anvil refuses it at once: True answers as anvil does (the conformance test compares with anvil)
        self.reject_below_base_fee = reject_below_base_fee
        self.block_time_s = block_time_s
        self._state = WorldState()
        self._pool: dict[str, dict[int, SimTx]] = {}  # sender -> nonce -> tx
        self._pooled: dict[str, SimTx] = {}  # hash -> tx in the pool
        self._mined: dict[str, tuple[int, int]] = {}  # hash -> (block number, index) on the canonical chain
        self._by_hash: dict[str, SimBlock] = {}
        self._gone: dict[str, TxStatus] = {}  # hash -> DROPPED / UNKNOWN (discarded by a reorg)
        self._seq = itertools.count()
        self._arrival: dict[str, int] = {}  # hash -> arrival order, for pooled transactions
        self._branch = 0
        self._next_base_fee_wei = base_fee_wei
        genesis = SimBlock(number=0, block_hash="", parent_hash="0x" + "00" * 32, timestamp_s=GENESIS_TIMESTAMP_S,
                           base_fee_per_gas_wei=base_fee_wei, gas_limit=GAS_LIMIT, gas_used=0, receipts=())
        genesis.block_hash = self._hash_of(genesis)
        self._blocks: list[SimBlock] = [genesis]
        self._by_hash[genesis.block_hash] = genesis

    # -- set-up ----------------------------------------------------------------------------------
    def fund(self, address: str, amount_wei: int) -> None:
        self._state.fund(address, amount_wei)

    def add_token(self, token: str) -> None:
        self._state.add_token(token)

    def mint(self, token: str, address: str, amount_minor: int) -> None:
        self._state.mint(token, address, amount_minor)

    # -- reading state -----------------------------------------------------------------------------
    @property
    def head(self) -> int:
        return self._blocks[-1].number

    @property
    def next_base_fee_wei(self) -> int:
        return self._next_base_fee_wei

    @property
    def tokens(self) -> frozenset[str]:
        return self._state.tokens

    def block(self, number: int) -> SimBlock | None:
        return self._blocks[number] if 0 <= number < len(self._blocks) else None

    def block_by_hash(self, block_hash: str) -> SimBlock | None:
        block = self._by_hash.get(block_hash.lower())
        return block if block is not None and self.block(block.number) is block else None

    def balance(self, address: str) -> int:
        return self._state.balance(address)

    def token_balance(self, token: str, owner: str) -> int:
        return self._state.token_balance(token, owner)

    def nonce(self, address: str) -> int:
        """Transactions from ``address`` on the canonical chain (``eth_getTransactionCount`` at latest)."""
        return self._state.nonce(address)

    def pending_nonce(self, address: str) -> int:
        """The next nonce after the pool's gapless run from ``nonce``, as geth answers ``pending``."""
        address = address.lower()
        nonce, queued = self.nonce(address), self._pool.get(address, {})
        while nonce in queued:
            nonce += 1
        return nonce

    def pending(self) -> list[SimTx]:
        return sorted(self._pooled.values(), key=lambda tx: self._arrival[tx.tx_hash])

    def transaction(self, tx_hash: str) -> tuple[SimTx, SimBlock | None, int | None] | None:
        tx_hash = tx_hash.lower()
        if tx_hash in self._mined:
            number, index = self._mined[tx_hash]
            block = self._blocks[number]
            return block.receipts[index].tx, block, index
        tx = self._pooled.get(tx_hash)
        return None if tx is None else (tx, None, None)

    def receipt(self, tx_hash: str) -> tuple[SimReceipt, SimBlock] | None:
        where = self._mined.get(tx_hash.lower())
        if where is None:
            return None
        block = self._blocks[where[0]]
        return block.receipts[where[1]], block

    def tx_status(self, tx_hash: str) -> TxStatus:
        tx_hash = tx_hash.lower()
        found = self.receipt(tx_hash)
        if found is not None:
            return TxStatus.SUCCEEDED if found[0].succeeded else TxStatus.REVERTED
        if tx_hash in self._pooled:
            return TxStatus.PENDING
        return self._gone.get(tx_hash, TxStatus.UNKNOWN)

    def canonical_receipts(self) -> Iterator[tuple[SimReceipt, SimBlock]]:
        for block in self._blocks:
            for receipt in block.receipts:
                yield receipt, block

    def transfers(self, *, to: str | None = None, min_confirmations: int = 0) -> list[Transfer]:
        """Value moved by successful transactions on the canonical chain, in chain order; ``min_confirmations``
        1 means "mined", ``confirmations`` as Teller counts them (head - block + 1)."""
        wanted = None if to is None else to.lower()
        last = self.head - max(min_confirmations - 1, 0)
        found = []
        for receipt, block in self.canonical_receipts():
            if block.number > last or not receipt.succeeded:
                continue
            tx = receipt.tx
            if tx.value_wei and tx.to is not None and wanted in (None, tx.to):
                found.append(Transfer(None, tx.sender, tx.to, tx.value_wei, tx.tx_hash, block.number,
                                      block.block_hash, None))
            for log in receipt.logs:
                recipient = "0x" + log.topics[2][26:]
                if wanted in (None, recipient):
                    found.append(Transfer(log.address, "0x" + log.topics[1][26:], recipient, int(log.data, 16),
                                          tx.tx_hash, block.number, block.block_hash, log.log_index))
        return found

    def nonces_used(self, sender: str) -> list[int]:
        sender = sender.lower()
        return [r.tx.nonce for r, _ in self.canonical_receipts() if r.tx.sender == sender]

    # -- transactions --------------------------------------------------------------------------------
    def submit_raw(self, raw: bytes) -> str:
        tx = decode_raw_transaction(raw)
        if tx.chain_id is not None and tx.chain_id != self.chain_id:
            raise TxRejected("invalid chain id for signer")
        return self._admit(tx)

    def submit(self, *, sender: str, to: str | None, value_wei: int = 0, data: bytes = b"", gas: int = 21_000,
               nonce: int | None = None, max_fee_per_gas_wei: int | None = None,
               max_priority_fee_per_gas_wei: int = 10**9) -> str:
        """An unsigned transaction from ``sender`` (as ``eth_sendTransaction`` from an impersonated account)."""
        sender = sender.lower()
        nonce = self.pending_nonce(sender) if nonce is None else nonce
        max_fee = 2 * self._next_base_fee_wei + max_priority_fee_per_gas_wei if max_fee_per_gas_wei is None \
            else max_fee_per_gas_wei
        material = repr((sender, nonce, to, value_wei, data, gas, max_fee, max_priority_fee_per_gas_wei)).encode()
        tx = SimTx(tx_hash="0x" + keccak(b"sim-unsigned" + material).hex(), sender=sender, nonce=nonce,
                   to=None if to is None else to.lower(), value_wei=value_wei, data=data, gas=gas,
                   max_fee_per_gas_wei=max_fee, max_priority_fee_per_gas_wei=max_priority_fee_per_gas_wei,
                   tx_type=2, chain_id=self.chain_id)
        return self._admit(tx)

    def _admit(self, tx: SimTx) -> str:
        if tx.tx_hash in self._pooled:
            raise TxRejected("already known")  # a mined one is "nonce too low", as geth and anvil answer
        if tx.nonce < self.nonce(tx.sender):
            raise TxRejected(f"nonce too low: next nonce {self.nonce(tx.sender)}, tx nonce {tx.nonce}")
        if tx.max_priority_fee_per_gas_wei > tx.max_fee_per_gas_wei:
            raise TxRejected("max priority fee per gas higher than max fee per gas")
        if tx.gas < intrinsic_gas(tx.data):
            raise TxRejected("intrinsic gas too low")
        if tx.gas > GAS_LIMIT:
            raise TxRejected("exceeds block gas limit")
        if self.balance(tx.sender) < tx.cost_max_wei:
            raise TxRejected("insufficient funds for gas * price + value")
        if self.reject_below_base_fee and tx.max_fee_per_gas_wei < self._next_base_fee_wei:
            raise TxRejected("max fee per gas less than block base fee")
        old = self._pool.get(tx.sender, {}).get(tx.nonce)
        if old is not None:
            if not _outbids(tx, old):
                raise TxRejected("replacement transaction underpriced")
            self._remove_pooled(old, TxStatus.DROPPED)
        elif len(self._pooled) >= self.pool_max or tx.nonce - self.nonce(tx.sender) >= POOL_QUEUED_PER_SENDER_MAX:
            raise TxRejected("txpool is full")
        self._pool.setdefault(tx.sender, {})[tx.nonce] = tx  # after the removal: it may drop the sender's map
        self._pooled[tx.tx_hash] = tx
        self._arrival[tx.tx_hash] = next(self._seq)
        self._gone.pop(tx.tx_hash, None)
        return tx.tx_hash

    def drop_pending(self, tx_hash: str) -> bool:
        """The pool loses the transaction (an eviction, a restart); False when it was not pending."""
        tx = self._pooled.get(tx_hash.lower())
        if tx is None:
            return False
        self._remove_pooled(tx, TxStatus.DROPPED)
        return True

    def drop_all_pending(self) -> None:
        for tx in list(self._pooled.values()):
            self._remove_pooled(tx, TxStatus.DROPPED)

    def _remove_pooled(self, tx: SimTx, status: TxStatus) -> None:
        del self._pooled[tx.tx_hash]
        del self._arrival[tx.tx_hash]
        queued = self._pool[tx.sender]
        del queued[tx.nonce]
        if not queued:
            del self._pool[tx.sender]
        self._gone[tx.tx_hash] = status

    # -- mining --------------------------------------------------------------------------------------
    def set_next_base_fee(self, base_fee_wei: int) -> None:
        if base_fee_wei <= 0:
            raise ValueError("base fee must be positive")
        self._next_base_fee_wei = base_fee_wei

    def mine(self, blocks: int = 1) -> list[SimBlock]:
        if len(self._blocks) + blocks > BLOCKS_MAX:
            raise SimLimit(f"more than {BLOCKS_MAX} blocks")
        return [self._seal(self._select) for _ in range(blocks)]

    def _select(self, base_fee_wei: int) -> Iterator[SimTx]:
        """The pool's executable transactions, best tip first, each sender's in nonce order; the caller
        executes each before the next is chosen (a sender's next nonce depends on it)."""
        heap: list[tuple[int, int, str]] = []

        def offer(sender: str) -> None:
            tx = self._pool.get(sender, {}).get(self.nonce(sender))
            if tx is not None and tx.max_fee_per_gas_wei >= base_fee_wei and \
                    self.balance(sender) >= tx.cost_max_wei:
                heapq.heappush(heap, (-tx.tip_at(base_fee_wei), self._arrival[tx.tx_hash], sender))

        for sender in sorted(self._pool):
            offer(sender)
        while heap:
            _, _, sender = heapq.heappop(heap)
            tx = self._pool[sender][self.nonce(sender)]
            self._remove_pooled(tx, TxStatus.UNKNOWN)
            yield tx
            offer(sender)

    def _seal(self, choose: Callable[[int], Iterator[SimTx]], forced: Sequence[SimTx] = ()) -> SimBlock:
        """Mine one block: ``forced`` in that order (a reorg's re-inclusions; any that does not fit goes
        back to the pool), else what ``choose(base_fee)`` offers until the block's gas is spent."""
        parent = self._blocks[-1]
        base_fee = self._next_base_fee_wei
        block = SimBlock(number=parent.number + 1, block_hash="", parent_hash=parent.block_hash,
                         timestamp_s=parent.timestamp_s + self.block_time_s, base_fee_per_gas_wei=base_fee,
                         gas_limit=GAS_LIMIT, gas_used=0, receipts=())
        receipts: list[SimReceipt] = []
        candidates: Iterable[SimTx] = forced if forced else choose(base_fee)
        for tx in candidates:
            full = block.gas_used + tx.gas > GAS_LIMIT
            if full or (forced and (tx.nonce != self.nonce(tx.sender) or tx.max_fee_per_gas_wei < base_fee
                                    or self.balance(tx.sender) < tx.cost_max_wei)):
                self._return_to_pool(tx)
                if full and not forced:
                    break
                continue
            receipt = self._state.execute(block, tx, index=len(receipts),
                                          first_log_index=sum(len(r.logs) for r in receipts))
            receipts.append(receipt)
            block.gas_used = receipt.cumulative_gas_used
        block.receipts = tuple(receipts)
        block.block_hash = self._hash_of(block)
        self._blocks.append(block)
        self._by_hash[block.block_hash] = block
        for index, receipt in enumerate(block.receipts):
            self._mined[receipt.tx.tx_hash] = (block.number, index)
            self._gone.pop(receipt.tx.tx_hash, None)
        self._next_base_fee_wei = _next_base_fee(base_fee, block.gas_used)
        if len(self._blocks) > REORG_DEPTH_MAX + 1:
            self._blocks[-REORG_DEPTH_MAX - 2].journal.clear()  # past any reorg's reach: memory stays bounded
        return block

    def _return_to_pool(self, tx: SimTx) -> None:
        if tx.nonce < self.nonce(tx.sender) or tx.nonce in self._pool.get(tx.sender, {}):
            self._gone[tx.tx_hash] = TxStatus.DROPPED  # its nonce is used, or taken by another: it can never be mined
            return
        self._pool.setdefault(tx.sender, {})[tx.nonce] = tx
        self._pooled[tx.tx_hash] = tx
        self._arrival[tx.tx_hash] = next(self._seq)  # it arrives again, behind what waited meanwhile
        self._gone.pop(tx.tx_hash, None)

    def _hash_of(self, block: SimBlock) -> str:
        material = b"".join([bytes.fromhex(block.parent_hash[2:]), block.number.to_bytes(8, "big"),
                             block.timestamp_s.to_bytes(8, "big"), block.base_fee_per_gas_wei.to_bytes(32, "big"),
                             self._branch.to_bytes(8, "big"), self.chain_id.to_bytes(8, "big"),
                             *(bytes.fromhex(r.tx.tx_hash[2:]) + bytes([r.succeeded]) for r in block.receipts)])
        return "0x" + keccak(material).hex()

    # -- reorgs --------------------------------------------------------------------------------------
    def reorg(self, depth: int, *, reinclude: Mapping[str, int] | None = None, drop: Iterable[str] = (),
              length: int | None = None) -> list[str]:
        """Replace the last ``depth`` blocks by ``length`` (default ``depth``) new ones with new hashes.

        Each transaction of the old branch is, by its hash: in ``reinclude`` -> mined again in the new block
        at that offset (0 = the first new block), in the mapping's order; in ``drop`` -> discarded for good
        (``tx_status`` UNKNOWN); otherwise back in the mempool for a later ``mine``. A re-included
        transaction that no longer fits (its nonce is not next, funds) goes back to the pool instead.
        Returns the old branch's block hashes."""
        length = depth if length is None else length
        if not 1 <= depth <= min(self.head, REORG_DEPTH_MAX) or length < 0:
            raise SimLimit(f"reorg depth must be in 1..{min(self.head, REORG_DEPTH_MAX)}")
        reinclude = {tx_hash.lower(): offset for tx_hash, offset in (reinclude or {}).items()}
        drop = {tx_hash.lower() for tx_hash in drop}
        if reinclude.keys() & drop:
            raise ValueError("a transaction both re-included and dropped")
        if any(not 0 <= offset < length for offset in reinclude.values()):
            raise ValueError("a re-inclusion offset outside the new branch")
        old = self._blocks[-depth:]
        del self._blocks[-depth:]
        for block in reversed(old):
            self._state.undo(block)
            for receipt in block.receipts:
                self._mined.pop(receipt.tx.tx_hash, None)
        old_txs = [tx for block in old for tx in block.txs]
        known = {tx.tx_hash for tx in old_txs}
        dropped = drop & known
        for tx in old_txs:
            if tx.tx_hash in dropped:
                self._gone[tx.tx_hash] = TxStatus.UNKNOWN
            elif tx.tx_hash not in reinclude:
                self._return_to_pool(tx)
        self._branch += 1
        parent = self._blocks[-1]  # the new branch's base fees follow from its parent, as any miner's would
        self._next_base_fee_wei = _next_base_fee(parent.base_fee_per_gas_wei, parent.gas_used)
        by_offset: dict[int, list[SimTx]] = {}
        by_hash = {tx.tx_hash: tx for tx in old_txs}
        for tx_hash, offset in reinclude.items():
            if tx_hash in by_hash:
                by_offset.setdefault(offset, []).append(by_hash[tx_hash])
        for offset in range(length):
            self._seal(lambda _fee: iter(()), by_offset.get(offset, ()))
        return [block.block_hash for block in old]


def _outbids(new: SimTx, old: SimTx) -> bool:
    """geth's rule: both the fee cap and the tip at least ``REPLACEMENT_BUMP_PERCENT`` higher."""
    bump = 100 + REPLACEMENT_BUMP_PERCENT
    return (new.max_fee_per_gas_wei * 100 >= old.max_fee_per_gas_wei * bump
            and new.max_priority_fee_per_gas_wei * 100 >= old.max_priority_fee_per_gas_wei * bump)


def _next_base_fee(base_fee_wei: int, gas_used: int) -> int:
    """EIP-1559: the base fee moves by up to 1/8 towards keeping blocks half full."""
    target = GAS_LIMIT // ELASTICITY
    if gas_used == target:
        return base_fee_wei
    if gas_used > target:
        return base_fee_wei + max(base_fee_wei * (gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR, 1)
    return base_fee_wei - base_fee_wei * (target - gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR
