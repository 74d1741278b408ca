"""The crypto deposit repository: deposit addresses, a chain watcher's checkpoint and block window, deposits.

Who writes what (and why it cannot double-count or miss):

- ``deposit_addresses``: one row per (user, chain), found-or-created by ``claim_address``. The HD index
  is the hot wallet's index + the user id (the next free one if that is taken); three unique constraints
  ((user, chain), (chain, index), (chain, address)) make two concurrent claims - in one process or
  several - end with one address per user and one user per index. The claim takes the chain's
  ``address_sequences`` row under a row lock (an UPDATE held to commit) and stores its value as ``seq``,
  with the watcher's checkpoint at that moment (``claim_block``): so the order of ``seq`` is the order
  claims commit in (ids are not, on PostgreSQL), and the watcher, loading ``seq > last seen``, never
  skips one. ``chain_checkpoints.address_seq`` is how far the watcher has taken addresses in; an
  address taken in when the checkpoint was already past its claim block gets the range it missed as
  a backfill (``backfill_next_block`` .. ``backfill_to_block``), written in the same transaction.
- ``chain_checkpoints`` + ``chain_blocks``: the watcher's last verified block and a window of recent
  (number, hash, parent) rows, written in the SAME transaction as the deposits found in those blocks
  (``commit_scan``), and moved only from the checkpoint it read (a conditional update: a second
  watcher on another process that raced it gets ``StaleWrite``).
- ``deposits``: one row per transfer, unique on (chain, tx_hash, asset, address, ordinal): the ordinal
  is the k-th transfer of that asset to that address within the transaction, by log index (a native
  transfer: 0). Nothing of it depends on the block, so the transaction re-mined at another height or
  log index is the same row, credited with the same ledger key (``credit_key``, stored on the row;
  rows from before migration 5 keep their old key). ``log_index`` and the block are where it was
  last seen.

Statuses::

    pending --(confirmations)--> credited --(its transaction left the chain)--> out_of_chain
       |  ^                         ^                                             |     |
       v  | (seen again)            +---------(seen again by reverse_at_block)----+     |
    orphaned                                                (not by then) reversed_after_credit

A pending row whose block leaves the chain is ``orphaned`` (never credited) and ``pending`` again if
its transaction comes back. A credited row is never credited again: if its transaction leaves the
chain it is ``out_of_chain`` until the watcher's checkpoint reaches ``reverse_at_block``; back by then,
it is ``credited`` again in its new block (no second credit); not back, it is
``reversed_after_credit`` - in one transaction with a ``user_asset`` freeze (key ``deposit:{id}``)
and a ``deposit.reversed`` event - and waits for an operator, who either debits the amount back
(``resolution = 'debited'``, ledger key ``deposit-reversal:{id}``) or keeps the credit
(``'released'``); either lifts the freeze, with the operator's reason, in the same transaction. A
reversed transaction seen again is only recorded (``reappeared_block``) for the operator.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from teller.errors import Conflict, NotFound, ServiceUnavailable
from teller.storage.freezes import Freezes
from teller.storage.ledger_keys import deposit_credit_key
from teller.storage.ledger_types import Event
from teller.storage.outbox import Outbox
from teller.storage.store import Row, StaleWrite, Store, UniqueViolation, Write, utc_now

__all__ = [
    "Deposits",
    "FoundDeposit",
    "Checkpoint",
    "DepositId",
    "NATIVE_LOG_INDEX",
    "NATIVE_ORDINAL",
    "HD_CLAIM_ATTEMPTS_MAX",
    "DEPOSITS_PAGE_MAX",
    "ADDRESSES_PAGE_MAX",
    "REVERSALS_PAGE_MAX",
    "RESOLUTIONS",
    "REVERSAL_STATES",
    "freeze_key",
]

NATIVE_LOG_INDEX = -1
NATIVE_ORDINAL = 0
HD_CLAIM_ATTEMPTS_MAX = 16   # index races lost in a row before giving up (each loss means another claim won)
HD_INDEX_MAX = 2**31 - 1     # BIP-32 non-hardened indexes
DEPOSITS_PAGE_MAX = 100
PENDING_SCAN_MAX = 5_000     # pending deposits looked at per crediting pass
ADDRESSES_PAGE_MAX = 10_000  # addresses loaded per query
BACKFILLS_MAX = 500          # addresses with a backfill looked at per backfill step
DUE_REVERSALS_MAX = 1_000    # out-of-chain deposits reversed per pass
REVERSALS_PAGE_MAX = 200
TX_HASHES_PER_QUERY_MAX = 500
RESOLUTIONS = {"debit": "debited", "release": "released"}   # an operator's action -> the recorded resolution
REVERSAL_STATES = {"open": " AND resolved_at IS NULL", "resolved": " AND resolved_at IS NOT NULL", "all": ""}

DepositId = tuple[str, str, str, int]   # (tx_hash, asset, address, ordinal) on one chain


def freeze_key(deposit_id: int) -> str:
    """The freeze a reversed deposit puts on its user's withdrawals of its asset."""
    return f"deposit:{int(deposit_id)}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    block_number: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class FoundDeposit:
    """A transfer to a deposit address seen in a block (not yet confirmed)."""

    user_id: int
    asset: str          # the symbol on its chain (``USDT``); the ledger code is ``{chain}:{asset}``
    address: str        # lowercase
    tx_hash: str
    ordinal: int        # the k-th transfer of this asset to this address in the transaction; native: 0
    log_index: int      # where it was seen; NATIVE_LOG_INDEX for a native transfer
    amount_minor: int
    block_number: int
    block_hash: str

    @property
    def identity(self) -> DepositId:
        return (self.tx_hash, self.asset, self.address, self.ordinal)


def _identity(row: Row) -> DepositId:
    return (row["tx_hash"], row["asset"], row["address"], int(row["ordinal"]))


def _checkpoint_fence(chain: str, checkpoint: Checkpoint) -> Write:
    """Holds the unit to the checkpoint it was decided on (and locks it, so a rewind waits for it)."""
    return Write("UPDATE chain_checkpoints SET updated_at = ? WHERE chain = ? AND block_number = ? AND block_hash = ?",
                 (utc_now(), chain, checkpoint.block_number, checkpoint.block_hash), expect_rows=1)


class Deposits:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- deposit addresses -----------------------------------------------------------------------
    async def address_of(self, user_id: int, chain: str) -> Row | None:
        return await self.store.fetch_one(
            "SELECT * FROM deposit_addresses WHERE user_id = ? AND chain = ?", user_id, chain)

    async def claim_address(self, user_id: int, chain: str, *, derive: Callable[[int], Awaitable[str]],
                            reserved_index: int) -> Row:
        """The user's address on ``chain``, created on first use.

        The index is ``reserved_index + user_id`` first: user ids are unique, so concurrent claims of
        different users never contend for it (a MAX+1 scheme makes N concurrent new users retry N
        times). Only if that index is taken (the reserved index was changed since) does it fall back to
        the next free one above the chain's highest."""
        candidate: int | None = reserved_index + user_id
        for _ in range(HD_CLAIM_ATTEMPTS_MAX):
            row = await self.address_of(user_id, chain)
            if row is not None:
                return row
            if candidate is None or candidate > HD_INDEX_MAX:
                top = await self.store.fetch_one(
                    "SELECT MAX(hd_index) AS top FROM deposit_addresses WHERE chain = ?", chain)
                candidate = max(int(top["top"]) if top and top["top"] is not None else 0, reserved_index) + 1
                if candidate > HD_INDEX_MAX:
                    break
            index, candidate = candidate, None
            address = (await derive(index)).lower()
            try:
                await self.store.run_atomic(self._claim_writes(user_id, chain, address, index))
            except UniqueViolation:
                continue  # another claim won: either ours (read it next turn) or this index (take the next)
        row = await self.address_of(user_id, chain)
        if row is None:
            raise ServiceUnavailable("could not allocate a deposit address right now; try again")
        return row

    @staticmethod
    def _claim_writes(user_id: int, chain: str, address: str, index: int) -> list[Write]:
        # The UPDATE holds the sequence row's lock until commit (PostgreSQL): the next claim waits
        # for this one, so seq order is commit order. claim_block is NULL before the watcher ever ran.
        return [
            Write("INSERT INTO address_sequences (chain, seq) VALUES (?, 0) ON CONFLICT (chain) DO NOTHING", (chain,)),
            Write("UPDATE address_sequences SET seq = seq + 1 WHERE chain = ?", (chain,), expect_rows=1),
            Write("INSERT INTO deposit_addresses (user_id, chain, address, hd_index, created_at, seq, claim_block)"
                  " VALUES (?, ?, ?, ?, ?, (SELECT seq FROM address_sequences WHERE chain = ?),"
                  " (SELECT block_number FROM chain_checkpoints WHERE chain = ?))",
                  (user_id, chain, address, index, utc_now(), chain, chain)),
        ]

    async def addresses_after(self, chain: str, after_seq: int, *, limit: int = ADDRESSES_PAGE_MAX) -> list[Row]:
        """Deposit addresses claimed after sequence number ``after_seq``, in claim-commit order."""
        return await self.store.fetch_all(
            "SELECT id, user_id, address, seq, claim_block FROM deposit_addresses"
            " WHERE chain = ? AND seq > ? ORDER BY seq LIMIT ?", chain, after_seq, limit)

    async def address_seq(self, chain: str) -> int:
        """The address sequence the watcher of ``chain`` has taken in (0 before it ever did)."""
        row = await self.store.fetch_one("SELECT address_seq FROM chain_checkpoints WHERE chain = ?", chain)
        return 0 if row is None else int(row["address_seq"])

    async def take_in_addresses(self, chain: str, *, checkpoint: Checkpoint, previous_seq: int, seq: int,
                                backfills: Sequence[tuple[int, int, int]]) -> None:
        """Record that the watcher watches every address up to ``seq`` from ``checkpoint`` on, and the
        ranges (address id, first block, last block) the ones claimed below it still have to scan - one
        transaction, held to the checkpoint and the sequence it read."""
        writes = [Write("UPDATE chain_checkpoints SET address_seq = ? WHERE chain = ? AND block_number = ?"
                        " AND block_hash = ? AND address_seq = ?",
                        (seq, chain, checkpoint.block_number, checkpoint.block_hash, previous_seq), expect_rows=1)]
        writes += [Write("UPDATE deposit_addresses SET backfill_next_block = ?, backfill_to_block = ? WHERE id = ?",
                         (first, last, address_id), expect_rows=1) for address_id, first, last in backfills]
        await self.store.run_atomic(writes)

    async def backfills(self, chain: str) -> list[Row]:
        """Addresses with a range still to scan, the lowest first."""
        return await self.store.fetch_all(
            "SELECT id, user_id, address, backfill_next_block, backfill_to_block FROM deposit_addresses"
            " WHERE chain = ? AND backfill_to_block IS NOT NULL ORDER BY backfill_next_block, id LIMIT ?",
            chain, BACKFILLS_MAX)

    # -- the watcher's checkpoint and block window --------------------------------------------------
    async def checkpoint(self, chain: str) -> Checkpoint | None:
        row = await self.store.fetch_one(
            "SELECT block_number, block_hash FROM chain_checkpoints WHERE chain = ?", chain)
        return None if row is None else Checkpoint(int(row["block_number"]), row["block_hash"])

    async def window(self, chain: str) -> dict[int, str]:
        rows = await self.store.fetch_all(
            "SELECT block_number, block_hash FROM chain_blocks WHERE chain = ?", chain)
        return {int(r["block_number"]): r["block_hash"] for r in rows}

    async def start_at(self, chain: str, checkpoint: Checkpoint, *, parent_hash: str) -> None:
        """The first checkpoint of a chain (no-op if one exists: a restart keeps its own)."""
        await self.store.run_atomic([
            Write("INSERT INTO chain_checkpoints (chain, block_number, block_hash, updated_at) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (chain) DO NOTHING", (chain, checkpoint.block_number, checkpoint.block_hash,
                                                       utc_now())),
            Write("INSERT INTO chain_blocks (chain, block_number, block_hash, parent_hash) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (chain, block_number) DO NOTHING",
                  (chain, checkpoint.block_number, checkpoint.block_hash, parent_hash)),
        ])

    # -- recording what a scan found ----------------------------------------------------------------
    async def existing(self, chain: str, keys: Sequence[DepositId]) -> dict[DepositId, Row]:
        """The rows (id, status, amount) of the deposits among ``keys`` already recorded."""
        found: dict[DepositId, Row] = {}
        hashes = sorted({key[0] for key in keys})
        for start in range(0, len(hashes), TX_HASHES_PER_QUERY_MAX):
            chunk = hashes[start:start + TX_HASHES_PER_QUERY_MAX]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.store.fetch_all(
                "SELECT id, tx_hash, asset, address, ordinal, status, amount_minor FROM deposits"
                f" WHERE chain = ? AND tx_hash IN ({marks})", chain, *chunk)
            found.update({_identity(r): r for r in rows})
        wanted = set(keys)
        return {key: row for key, row in found.items() if key in wanted}

    @staticmethod
    def _found_writes(chain: str, found: Sequence[FoundDeposit], statuses: dict[DepositId, Row]) -> list[Write]:
        """New rows inserted ``pending``; orphaned ones pending again and out-of-chain ones credited again,
        in their new block; a reversed one only noted as seen again. Pending and credited ones, and an
        out-of-chain one that came back with another amount, are left alone."""
        now = utc_now()
        writes: list[Write] = []
        for dep in found:
            row = statuses.get(dep.identity)
            status = None if row is None else row["status"]
            where = (dep.block_number, dep.block_hash, dep.log_index, now)
            if row is None:
                writes.append(Write(
                    "INSERT INTO deposits (user_id, chain, asset, address, tx_hash, ordinal, log_index, amount_minor,"
                    " block_number, block_hash, status, credit_key, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
                    " ON CONFLICT (chain, tx_hash, asset, address, ordinal) DO NOTHING",
                    (dep.user_id, chain, dep.asset, dep.address, dep.tx_hash, dep.ordinal, dep.log_index,
                     dep.amount_minor, dep.block_number, dep.block_hash,
                     deposit_credit_key(chain, dep.tx_hash, dep.asset, dep.address, dep.ordinal), now, now)))
            elif status == "orphaned":  # never credited: the amount is what the chain says now
                writes.append(Write(
                    "UPDATE deposits SET status = 'pending', block_number = ?, block_hash = ?, log_index = ?,"
                    " updated_at = ?, amount_minor = ? WHERE id = ? AND status = 'orphaned'",
                    (*where, dep.amount_minor, row["id"])))
            elif status == "out_of_chain" and row["amount_minor"] == dep.amount_minor:
                writes.append(Write(
                    "UPDATE deposits SET status = 'credited', block_number = ?, block_hash = ?, log_index = ?,"
                    " updated_at = ?, left_chain_at = NULL, reverse_at_block = NULL"
                    " WHERE id = ? AND status = 'out_of_chain'", (*where, row["id"])))
            elif status == "reversed_after_credit":
                writes.append(Write(
                    "UPDATE deposits SET reappeared_block = ?, updated_at = ? WHERE id = ?"
                    " AND status = 'reversed_after_credit'", (dep.block_number, now, row["id"])))
        return writes

    async def commit_scan(self, chain: str, *, previous: Checkpoint, blocks: Sequence[tuple[int, str, str]],
                          found: Sequence[FoundDeposit], statuses: dict[DepositId, Row],
                          seen_events: Sequence[Event], window_blocks: int) -> None:
        """One transaction: the deposits found in ``blocks`` (number, hash, parent) recorded (see
        ``_found_writes``; ``statuses`` is what ``existing`` answered for ``found``) with their events,
        the window extended and trimmed, and the checkpoint moved from ``previous`` to the last block."""
        now = utc_now()
        writes = self._found_writes(chain, found, statuses)
        writes.extend(Outbox.write(event) for event in seen_events)
        last_number, last_hash, _ = blocks[-1]
        for number, block_hash, parent_hash in blocks[-window_blocks:]:
            writes.append(Write(
                "INSERT INTO chain_blocks (chain, block_number, block_hash, parent_hash) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (chain, block_number) DO UPDATE SET block_hash = excluded.block_hash,"
                " parent_hash = excluded.parent_hash", (chain, number, block_hash, parent_hash)))
        writes.append(Write("DELETE FROM chain_blocks WHERE chain = ? AND block_number <= ?",
                            (chain, last_number - window_blocks)))
        writes.append(Write(
            "UPDATE chain_checkpoints SET block_number = ?, block_hash = ?, updated_at = ?"
            " WHERE chain = ? AND block_number = ? AND block_hash = ?",
            (last_number, last_hash, now, chain, previous.block_number, previous.block_hash), expect_rows=1))
        await self.store.run_atomic(writes)

    async def commit_backfill(self, chain: str, *, checkpoint: Checkpoint, found: Sequence[FoundDeposit],
                              statuses: dict[DepositId, Row], seen_events: Sequence[Event],
                              progress: Sequence[tuple[int, int, int | None]]) -> None:
        """One transaction: what a backfill range found (as ``commit_scan`` records it) and each address's
        progress (address id, the next block it had, the next block now or None when done), held to the
        checkpoint the range was decided on. The checkpoint does not move."""
        writes = self._found_writes(chain, found, statuses)
        writes.extend(Outbox.write(event) for event in seen_events)
        for address_id, had, now_next in progress:
            if now_next is None:
                writes.append(Write("UPDATE deposit_addresses SET backfill_next_block = NULL, backfill_to_block = NULL"
                                    " WHERE id = ? AND backfill_next_block = ?", (address_id, had), expect_rows=1))
            else:
                writes.append(Write("UPDATE deposit_addresses SET backfill_next_block = ? WHERE id = ?"
                                    " AND backfill_next_block = ?", (now_next, address_id, had), expect_rows=1))
        writes.append(_checkpoint_fence(chain, checkpoint))  # last, as commit_scan moves it: one lock order
        await self.store.run_atomic(writes)

    async def rewind(self, chain: str, *, previous: Checkpoint, ancestor: Checkpoint, reverse_at_block: int,
                     orphan_event: Callable[[Row], Event]) -> list[Row]:
        """After a reorg, one transaction: deposits above ``ancestor`` that were pending become orphaned (one
        event each), credited ones out of chain until ``reverse_at_block``; the window above it is dropped and
        the checkpoint moves back to it. Returns the rows that went out of chain."""
        rows = await self.store.fetch_all(
            "SELECT * FROM deposits WHERE chain = ? AND block_number > ? AND status IN ('pending', 'credited')"
            " ORDER BY id", chain, ancestor.block_number)  # all of them: one left pending would be credited
        now = utc_now()
        writes: list[Write] = []
        for row in rows:
            if row["status"] == "pending":
                writes.append(Write(
                    "UPDATE deposits SET status = 'orphaned', updated_at = ? WHERE id = ? AND status = 'pending'",
                    (now, row["id"]), expect_rows=1))
                writes.append(Outbox.write(orphan_event(row)))
            else:
                writes.append(Write(
                    "UPDATE deposits SET status = 'out_of_chain', left_chain_at = ?, reverse_at_block = ?,"
                    " updated_at = ? WHERE id = ? AND status = 'credited'",
                    (now, reverse_at_block, now, row["id"]), expect_rows=1))
        writes.append(Write("DELETE FROM chain_blocks WHERE chain = ? AND block_number > ?",
                            (chain, ancestor.block_number)))
        writes.append(Write(
            "UPDATE chain_checkpoints SET block_number = ?, block_hash = ?, updated_at = ?"
            " WHERE chain = ? AND block_number = ? AND block_hash = ?",
            (ancestor.block_number, ancestor.block_hash, now, chain, previous.block_number, previous.block_hash),
            expect_rows=1))
        await self.store.run_atomic(writes)
        return [row for row in rows if row["status"] == "credited"]

    # -- reversal: a credited deposit whose transaction did not come back ---------------------------
    async def due_reversals(self, chain: str, *, block_number: int) -> list[Row]:
        """Out-of-chain deposits whose window ended at or below ``block_number``."""
        return await self.store.fetch_all(
            "SELECT * FROM deposits WHERE chain = ? AND status = 'out_of_chain' AND reverse_at_block <= ?"
            " ORDER BY id LIMIT ?", chain, block_number, DUE_REVERSALS_MAX)

    async def reverse(self, row: Row, *, checkpoint: Checkpoint, event: Event, reason: str) -> None:
        """One transaction: the row ``reversed_after_credit``, its user's withdrawals of its asset frozen,
        the event; held to the checkpoint whose scan showed the transaction is not back."""
        chain = row["chain"]
        await self.store.run_atomic([
            Write("UPDATE deposits SET status = 'reversed_after_credit', reversed_at = ?, updated_at = ?"
                  " WHERE id = ? AND status = 'out_of_chain'", (utc_now(), utc_now(), row["id"]), expect_rows=1),
            Freezes.freeze_write(freeze_key(row["id"]), scope="user_asset", chain=chain, user_id=int(row["user_id"]),
                                 asset=f"{chain}:{row['asset']}", reason=reason),
            Outbox.write(event),
            _checkpoint_fence(chain, checkpoint),
        ])

    # -- an operator's resolution ---------------------------------------------------------------------
    async def reversal(self, deposit_id: int) -> Row:
        """A reversed deposit; NotFound for any other (unknown, or never reversed)."""
        row = await self.get(deposit_id)
        if row is None or row["status"] != "reversed_after_credit":
            raise NotFound("no reversed deposit with this id")
        return row

    @staticmethod
    def resolve_writes(deposit_id: int, *, action: str, reason: str) -> list[Write]:
        """The row resolved (once: ``StaleWrite`` if it already was) and its freeze lifted, with the reason."""
        resolution = RESOLUTIONS[action]
        now = utc_now()
        return [
            Write("UPDATE deposits SET resolution = ?, resolution_reason = ?, resolved_at = ?, updated_at = ?"
                  " WHERE id = ? AND status = 'reversed_after_credit' AND resolved_at IS NULL",
                  (resolution, reason, now, now, deposit_id), expect_rows=1),
            Freezes.release_write(freeze_key(deposit_id), resolution=resolution, reason=reason),
        ]

    async def release(self, deposit_id: int, *, reason: str) -> None:
        """Keep the credit (the operator judged it real) and lift the freeze; Conflict if already resolved."""
        try:
            await self.store.run_atomic(self.resolve_writes(deposit_id, action="release", reason=reason))
        except StaleWrite:
            raise Conflict("this reversal is already resolved") from None

    async def reversals(self, *, state: str, limit: int, after_id: int = 0) -> list[Row]:
        """Reversed deposits by id: ``open`` (waiting for an operator), ``resolved`` or ``all``."""
        where = REVERSAL_STATES[state]
        limit = max(1, min(limit, REVERSALS_PAGE_MAX))
        return await self.store.fetch_all(
            f"SELECT * FROM deposits WHERE status = 'reversed_after_credit'{where} AND id > ? ORDER BY id LIMIT ?",
            after_id, limit)

    async def open_reversals_count(self) -> int:
        row = await self.store.fetch_one(
            "SELECT COUNT(*) AS n FROM deposits WHERE status = 'reversed_after_credit' AND resolved_at IS NULL")
        return int(row["n"]) if row else 0

    # -- crediting ------------------------------------------------------------------------------------
    async def confirmed_pending(self, chain: str, *, block_number_max: int) -> list[Row]:
        return await self.store.fetch_all(
            "SELECT * FROM deposits WHERE chain = ? AND status = 'pending' AND block_number <= ?"
            " ORDER BY block_number, id LIMIT ?", chain, block_number_max, PENDING_SCAN_MAX)

    @staticmethod
    def credit_writes(row: Row) -> list[Write]:
        """What commits with the deposit's ledger credit: the row goes pending -> credited, from the very
        block it was confirmed in (a reorg that moved it since makes the whole credit fail: StaleWrite)."""
        now = utc_now()
        return [Write(
            "UPDATE deposits SET status = 'credited', credited_at = ?, updated_at = ?"
            " WHERE id = ? AND status = 'pending' AND block_hash = ?",
            (now, now, row["id"], row["block_hash"]), expect_rows=1)]

    async def mark_credited(self, row: Row) -> int:
        """For a credit whose ledger transfer already existed (a replay): bring the row in line."""
        now = utc_now()
        return await self.store.execute(
            "UPDATE deposits SET status = 'credited', credited_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
            now, now, row["id"])

    # -- reading ---------------------------------------------------------------------------------------
    async def get(self, deposit_id: int) -> Row | None:
        return await self.store.fetch_one("SELECT * FROM deposits WHERE id = ?", deposit_id)

    async def page(self, user_id: int, *, limit: int, before_id: int | None = None) -> list[Row]:
        limit = max(1, min(limit, DEPOSITS_PAGE_MAX + 1))
        if before_id is None:
            return await self.store.fetch_all(
                "SELECT * FROM deposits WHERE user_id = ? ORDER BY id DESC LIMIT ?", user_id, limit)
        return await self.store.fetch_all(
            "SELECT * FROM deposits WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?", user_id, before_id, limit)

    async def all_for_chain(self, chain: str) -> list[Row]:
        return await self.store.fetch_all("SELECT * FROM deposits WHERE chain = ? ORDER BY id", chain)
