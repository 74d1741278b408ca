"""The crypto deposit repository: deposit addresses, a chain watcher's checkpoint and block window, deposits.

Who writes what (and why it cannot double-count):

- ``deposit_addresses``: one row per (user, chain), found-or-created by ``claim_address``. The HD index
  is the hot wallet's index + the user id (the next free one if that is taken); three unique constraints ((user, chain), (chain, index), (chain,
  address)) make two concurrent claims - in one process or several - end with one address per user and
  one user per index: the loser of a race reads the winner's row or retries with the next index.
- ``chain_checkpoints`` + ``chain_blocks``: the watcher's last verified block and a window of recent
  (number, hash, parent) rows, written in the SAME transaction as the deposits found in those blocks
  (``commit_scan``), and moved only from the checkpoint it read (a conditional update: a second
  watcher on another process that raced it gets ``StaleWrite``).
- ``deposits``: unique on (chain, tx_hash, log_index) - the same transfer re-included by a reorg is the
  same row. ``pending`` -> ``credited`` only through the ledger transfer keyed ``deposit_key`` (see
  ``credit_writes``); ``pending`` -> ``orphaned`` when a reorg drops its block; ``orphaned`` -> ``pending``
  when the transfer shows up again in the new chain. A credited deposit is never touched again.

Native-coin deposits have ``log_index = NATIVE_LOG_INDEX`` (-1): a transaction carries at most one
native value transfer to its ``to`` address, so (tx hash, -1) identifies it as (tx hash, log index)
identifies a token Transfer log.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from teller.errors import ServiceUnavailable
from teller.storage.outbox import Outbox
from teller.storage.store import Row, Store, UniqueViolation, Write, utc_now
from teller.storage.ledger_types import Event

__all__ = [
    "Deposits",
    "FoundDeposit",
    "Checkpoint",
    "NATIVE_LOG_INDEX",
    "deposit_key",
    "HD_CLAIM_ATTEMPTS_MAX",
    "DEPOSITS_PAGE_MAX",
]

NATIVE_LOG_INDEX = -1
HD_CLAIM_ATTEMPTS_MAX = 16   # index races lost in a row before giving up (each loss means another claim won)
HD_INDEX_MAX = 2**31 - 1     # BIP-32 non-hardened indexes
DEPOSITS_PAGE_MAX = 100
PENDING_SCAN_MAX = 5_000     # pending deposits looked at per crediting pass


def deposit_key(chain: str, tx_hash: str, log_index: int) -> str:
    """The ledger idempotency key of a deposit's credit: it survives re-inclusion in another block."""
    return f"deposit:{chain}:{tx_hash}:{log_index}"


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
    log_index: int      # NATIVE_LOG_INDEX for a native transfer
    amount_minor: int
    block_number: int
    block_hash: str


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
                await self.store.execute(
                    "INSERT INTO deposit_addresses (user_id, chain, address, hd_index, created_at)"
                    " VALUES (?, ?, ?, ?, ?)", user_id, chain, address, index, utc_now())
            except UniqueViolation:
                continue  # another claim won: either ours (read it next turn) or this index (take the next)
        row = await self.address_of(user_id, chain)
        if row is None:
            raise ServiceUnavailable("could not allocate a deposit address right now; try again")
        return row

    async def addresses_since(self, chain: str, after_id: int) -> list[Row]:
        """Deposit addresses created after row ``after_id`` (the watcher loads them incrementally)."""
        return await self.store.fetch_all(
            "SELECT id, user_id, address FROM deposit_addresses WHERE chain = ? AND id > ? ORDER BY id",
            chain, after_id)

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

    async def existing(self, chain: str, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Status of the deposits among ``keys`` (tx_hash, log_index) already recorded."""
        found: dict[tuple[str, int], str] = {}
        hashes = sorted({tx for tx, _ in keys})
        for start in range(0, len(hashes), 500):
            chunk = hashes[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.store.fetch_all(
                f"SELECT tx_hash, log_index, status FROM deposits WHERE chain = ? AND tx_hash IN ({marks})",
                chain, *chunk)
            found.update({(r["tx_hash"], int(r["log_index"])): r["status"] for r in rows})
        return found

    async def commit_scan(self, chain: str, *, previous: Checkpoint, blocks: Sequence[tuple[int, str, str]],
                          found: Sequence[FoundDeposit], statuses: dict[tuple[str, int], str],
                          seen_events: Sequence[Event], window_blocks: int) -> None:
        """One transaction: the deposits found in ``blocks`` (number, hash, parent) recorded ``pending`` with
        their events, the window extended and trimmed, and the checkpoint moved from ``previous`` to the last
        block. ``statuses`` is what ``existing`` answered for ``found``: new rows are inserted, orphaned ones
        come back to pending in their new block, pending and credited ones are left alone."""
        now = utc_now()
        writes: list[Write] = []
        for dep in found:
            status = statuses.get((dep.tx_hash, dep.log_index))
            if status is None:
                writes.append(Write(
                    "INSERT INTO deposits (user_id, chain, asset, address, tx_hash, log_index, amount_minor,"
                    " block_number, block_hash, status, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)"
                    " ON CONFLICT (chain, tx_hash, log_index) DO NOTHING",
                    (dep.user_id, chain, dep.asset, dep.address, dep.tx_hash, dep.log_index, dep.amount_minor,
                     dep.block_number, dep.block_hash, now, now)))
            elif status == "orphaned":
                writes.append(Write(
                    "UPDATE deposits SET status = 'pending', block_number = ?, block_hash = ?, updated_at = ?"
                    " WHERE chain = ? AND tx_hash = ? AND log_index = ? AND status = 'orphaned'",
                    (dep.block_number, dep.block_hash, now, chain, dep.tx_hash, dep.log_index)))
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

    async def rewind(self, chain: str, *, previous: Checkpoint, ancestor: Checkpoint,
                     orphan_event: Callable[[Row], Event]) -> list[Row]:
        """After a reorg: deposits above ``ancestor`` that were pending become orphaned (one event each), the
        window above it is dropped, and the checkpoint moves back to it - one transaction. Credited deposits
        above it (a reorg deeper than the confirmations) are left as they are and returned for the log."""
        rows = await self.store.fetch_all(
            "SELECT * FROM deposits WHERE chain = ? AND block_number > ? AND status IN ('pending', 'credited')"
            " ORDER BY id", chain, ancestor.block_number)  # all of them: one left pending would be credited
        now = utc_now()
        writes: list[Write] = []
        for row in rows:
            if row["status"] != "pending":
                continue
            writes.append(Write(
                "UPDATE deposits SET status = 'orphaned', updated_at = ? WHERE id = ? AND status = 'pending'",
                (now, row["id"]), expect_rows=1))
            writes.append(Outbox.write(orphan_event(row)))
        writes.append(Write("DELETE FROM chain_blocks WHERE chain = ? AND block_number > ?",
                            (chain, ancestor.block_number)))
        writes.append(Write(
            "UPDATE chain_checkpoints SET block_number = ?, block_hash = ?, updated_at = ?"
            " WHERE chain = ? AND block_number = ? AND block_hash = ?",
            (ancestor.block_number, ancestor.block_hash, now, chain, previous.block_number, previous.block_hash),
            expect_rows=1))
        await self.store.run_atomic(writes)
        return [row for row in rows if row["status"] == "credited"]

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
    async def page(self, user_id: int, *, limit: int, before_id: int | None = None) -> list[Row]:
        limit = max(1, min(limit, DEPOSITS_PAGE_MAX + 1))
        if before_id is None:
            return await self.store.fetch_all(
                "SELECT * FROM deposits WHERE user_id = ? ORDER BY id DESC LIMIT ?", user_id, limit)
        return await self.store.fetch_all(
            "SELECT * FROM deposits WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?", user_id, before_id, limit)

    async def all_for_chain(self, chain: str) -> list[Row]:
        return await self.store.fetch_all("SELECT * FROM deposits WHERE chain = ? ORDER BY id", chain)

