"""The withdrawals repository: withdrawal rows, their signed attempts, and the hot wallets' nonces.

Tables (``teller.storage.schema``, migration 1): ``withdrawals`` (one per accepted request, unique per
``(user_id, idempotency_key)``), ``withdrawal_attempts`` (every signed transaction, replacements
included, unique per ``(chain, tx_hash)``) and ``address_nonces`` (the next nonce of each hot wallet).

Status of a withdrawal, each step a conditional update (``WHERE status = <what we saw>``):

    pending --sign + nonce, one transaction--> signed --node accepted--> broadcast --confirmed-->
    confirmed;  signed|broadcast --our own transaction reverted, confirmations deep--> failed

Beside the status, two marks an operator sees (``/ops/status``), neither of which moves money:

- ``incident_reason``: the chain disagrees with our records (the nonce is used but none of our
  transactions mined; a receipt that does not show the transfer we signed). Written with a
  ``chain`` freeze in one transaction; the row waits for an operator (``resolve`` in ``teller/http``).
- ``failures`` / ``last_error`` / ``retry_at``: a step of this row keeps failing; it is parked until
  ``retry_at`` (backoff) while the rest of the chain's queue goes on.

Reads return plain rows; writes are returned as ``Write`` objects so the caller puts them into the
same DB transaction as the ledger change or the nonce they belong with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from teller.errors import DailyLimitExceeded
from teller.storage.store import Row, Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Withdrawals", "UNFINISHED", "PAGE_MAX", "UNFINISHED_BATCH_MAX", "DailyLimit"]

UNFINISHED = ("pending", "signed", "broadcast")
PAGE_MAX = 100
UNFINISHED_BATCH_MAX = 200     # withdrawals one actor tick looks at
ATTEMPTS_PER_WITHDRAWAL_MAX = 64  # signed replacements are bounded: past it, no more (reads are not)
DAILY_ROWS_MAX = 10_000        # a user's withdrawals of one asset in one day that we sum; past it: refused
PARKED_LISTED_MAX = 100        # parked or incident rows shown per chain in /ops/status
ERROR_TEXT_MAX = 300


@dataclass(frozen=True, slots=True)
class DailyLimit:
    """A user's daily withdrawal limit of one asset (``chain``, ``asset`` symbol), in its minor units."""

    user_id: int
    chain: str
    asset: str
    limit_minor: int
    amount_minor: int    # the request being checked
    since: datetime      # the start of the day

    def check(self, rows: list[Row]) -> None:
        if len(rows) > DAILY_ROWS_MAX:
            raise DailyLimitExceeded("too many withdrawals today")
        used = sum(r["amount_minor"] for r in rows)
        if used + self.amount_minor > self.limit_minor:
            raise DailyLimitExceeded(f"the daily {self.asset} withdrawal limit would be exceeded")


class Withdrawals:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reads ---------------------------------------------------------------------------------------
    async def get(self, withdrawal_id: int) -> Row | None:
        return await self._store.fetch_one("SELECT * FROM withdrawals WHERE id = ?", withdrawal_id)

    async def get_many(self, withdrawal_ids: Sequence[int]) -> dict[int, Row]:
        """Rows by id; missing ids are absent."""
        return {row["id"]: row for row in await self._where_in("SELECT * FROM withdrawals WHERE id IN ({})",
                                                                withdrawal_ids)}

    async def get_for_user(self, user_id: int, withdrawal_id: int) -> Row | None:
        return await self._store.fetch_one(
            "SELECT * FROM withdrawals WHERE id = ? AND user_id = ?", withdrawal_id, user_id)

    async def by_key(self, user_id: int, idempotency_key: str) -> Row | None:
        return await self._store.fetch_one(
            "SELECT * FROM withdrawals WHERE user_id = ? AND idempotency_key = ?", user_id, idempotency_key)

    async def page(self, user_id: int, *, limit: int, before_id: int | None = None) -> list[Row]:
        limit = max(1, min(limit, PAGE_MAX))
        return await self._store.fetch_all(
            "SELECT * FROM withdrawals WHERE user_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            user_id, before_id if before_id is not None else 2**62, limit)

    async def unfinished(self, chain: str, *, in_flight: bool, limit: int = UNFINISHED_BATCH_MAX) -> list[Row]:
        """A chain's withdrawals still to move, oldest first: ``in_flight`` (signed or broadcast, by
        nonce) or not yet signed. Two queries, so in-flight ones never starve new ones of a batch.
        A parked row is left out until its ``retry_at``, so it never takes the place of others."""
        statuses = "('signed', 'broadcast')" if in_flight else "('pending')"
        order = "nonce" if in_flight else "id"
        return await self._store.fetch_all(
            f"SELECT * FROM withdrawals WHERE chain = ? AND status IN {statuses}"
            f" AND (retry_at IS NULL OR retry_at <= ?) ORDER BY {order} LIMIT ?",
            chain, utc_now(), max(1, min(limit, UNFINISHED_BATCH_MAX)))

    async def troubled(self, chain: str) -> list[Row]:
        """The chain's unfinished rows with an incident or parked after failures, for ops."""
        return await self._store.fetch_all(
            "SELECT * FROM withdrawals WHERE chain = ? AND status IN ('pending', 'signed', 'broadcast')"
            " AND (incident_reason IS NOT NULL OR failures > 0) ORDER BY id LIMIT ?", chain, PARKED_LISTED_MAX)

    async def troubled_counts(self, chain: str) -> tuple[int, int]:
        """(parked, incidents) among the chain's unfinished rows."""
        row = await self._store.fetch_one(
            "SELECT SUM(CASE WHEN failures > 0 THEN 1 ELSE 0 END) AS parked,"
            " SUM(CASE WHEN incident_reason IS NOT NULL THEN 1 ELSE 0 END) AS incidents FROM withdrawals"
            " WHERE chain = ? AND status IN ('pending', 'signed', 'broadcast')"
            " AND (incident_reason IS NOT NULL OR failures > 0)", chain)
        return int((row or {}).get("parked") or 0), int((row or {}).get("incidents") or 0)

    async def latest_attempts(self, withdrawal_ids: Sequence[int]) -> dict[int, Row]:
        """The newest signed transaction of each withdrawal, in one query per batch."""
        rows = await self._where_in("SELECT * FROM withdrawal_attempts WHERE withdrawal_id IN ({}) ORDER BY id",
                                    withdrawal_ids)
        return {row["withdrawal_id"]: row for row in rows}  # ordered by id: the last one wins

    async def _where_in(self, sql: str, ids: Sequence[int]) -> list[Row]:
        """``sql`` with its ``{}`` filled by placeholders, run once per ``UNFINISHED_BATCH_MAX`` ids."""
        rows: list[Row] = []
        for start in range(0, len(ids), UNFINISHED_BATCH_MAX):
            chunk = list(ids[start:start + UNFINISHED_BATCH_MAX])
            rows += await self._store.fetch_all(sql.format(", ".join("?" for _ in chunk)), *chunk)
        return rows

    async def attempts(self, withdrawal_id: int) -> list[Row]:
        """Every signed transaction of a withdrawal, oldest first: all of them, whichever may have mined.
        (Their number is bounded where they are made, ``ATTEMPTS_PER_WITHDRAWAL_MAX``, not here: a read
        that left one out once refunded a paid withdrawal.)"""
        return await self._store.fetch_all(
            "SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ? ORDER BY id", withdrawal_id)

    async def attempt_count(self, withdrawal_id: int) -> int:
        row = await self._store.fetch_one(
            "SELECT COUNT(*) AS n FROM withdrawal_attempts WHERE withdrawal_id = ?", withdrawal_id)
        return int((row or {}).get("n") or 0)

    async def next_nonce(self, chain: str, address: str) -> int | None:
        row = await self._store.fetch_one(
            "SELECT next_nonce FROM address_nonces WHERE chain = ? AND address = ?", chain, address)
        return None if row is None else int(row["next_nonce"])

    async def raise_nonce_floor(self, chain: str, address: str, floor: int) -> None:
        """Make the stored next nonce at least ``floor`` (the chain's count of mined transactions): a
        transaction sent from the hot wallet by anyone else must never make us reuse its nonce."""
        await self._store.execute(
            "INSERT INTO address_nonces (chain, address, next_nonce, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (chain, address) DO NOTHING", chain, address, floor, utc_now())
        await self._store.execute(
            "UPDATE address_nonces SET next_nonce = ?, updated_at = ? WHERE chain = ? AND address = ?"
            " AND next_nonce < ?", floor, utc_now(), chain, address, floor)

    # -- writes (as Write objects, for the caller's transaction) -------------------------------------
    @staticmethod
    def insert(*, user_id: int, chain: str, asset: str, to_address: str, amount_minor: int, fee_minor: int,
               idempotency_key: str, fingerprint: str, hold_key: str) -> Write:
        now = utc_now()
        return Write(
            "INSERT INTO withdrawals (user_id, chain, asset, to_address, amount_minor, fee_minor, idempotency_key,"
            " request_fingerprint, hold_key, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (user_id, chain, asset, to_address, amount_minor, fee_minor, idempotency_key, fingerprint, hold_key,
             now, now), expect_rows=1)

    @staticmethod
    def first_signature(*, withdrawal_id: int, chain: str, from_address: str, nonce: int, tx_hash: str,
                        raw_tx: str, max_fee_per_gas_wei: int, max_priority_fee_per_gas_wei: int) -> list[Write]:
        """Take the next nonce, bind it to the withdrawal and persist the signed bytes: one unit, so a
        nonce is never taken without its transaction, nor a transaction sent that is not on disk."""
        now = utc_now()
        return [
            Write("UPDATE address_nonces SET next_nonce = ?, updated_at = ? WHERE chain = ? AND address = ?"
                  " AND next_nonce = ?", (nonce + 1, now, chain, from_address, nonce), expect_rows=1),
            Write("UPDATE withdrawals SET status = 'signed', nonce = ?, from_address = ?, tx_hash = ?, updated_at = ?,"
                  " failures = 0, last_error = NULL, retry_at = NULL"
                  " WHERE id = ? AND status = 'pending' AND nonce IS NULL",
                  (nonce, from_address, tx_hash, now, withdrawal_id), expect_rows=1),
            Withdrawals._attempt(withdrawal_id=withdrawal_id, chain=chain, nonce=nonce, tx_hash=tx_hash, raw_tx=raw_tx,
                                 max_fee_per_gas_wei=max_fee_per_gas_wei,
                                 max_priority_fee_per_gas_wei=max_priority_fee_per_gas_wei, now=now),
        ]

    @staticmethod
    def replacement(*, withdrawal_id: int, chain: str, nonce: int, tx_hash: str, raw_tx: str,
                    max_fee_per_gas_wei: int, max_priority_fee_per_gas_wei: int) -> list[Write]:
        """A re-priced transaction for the same nonce; the older ones stay remembered (any may mine)."""
        now = utc_now()
        return [
            Write("UPDATE withdrawal_attempts SET status = 'replaced', updated_at = ? WHERE withdrawal_id = ?"
                  " AND status IN ('signed', 'broadcast')", (now, withdrawal_id)),
            Withdrawals._attempt(withdrawal_id=withdrawal_id, chain=chain, nonce=nonce, tx_hash=tx_hash, raw_tx=raw_tx,
                                 max_fee_per_gas_wei=max_fee_per_gas_wei,
                                 max_priority_fee_per_gas_wei=max_priority_fee_per_gas_wei, now=now),
            Write("UPDATE withdrawals SET tx_hash = ?, updated_at = ? WHERE id = ? AND nonce = ?"
                  " AND status IN ('signed', 'broadcast')", (tx_hash, now, withdrawal_id, nonce), expect_rows=1),
        ]

    @staticmethod
    def _attempt(*, withdrawal_id: int, chain: str, nonce: int, tx_hash: str, raw_tx: str, max_fee_per_gas_wei: int,
                 max_priority_fee_per_gas_wei: int, now: datetime) -> Write:
        return Write(
            "INSERT INTO withdrawal_attempts (withdrawal_id, chain, nonce, tx_hash, raw_tx, max_fee_per_gas_wei,"
            " max_priority_fee_per_gas_wei, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'signed', ?, ?)",
            (withdrawal_id, chain, nonce, tx_hash, raw_tx, max_fee_per_gas_wei, max_priority_fee_per_gas_wei, now, now),
            expect_rows=1)

    @staticmethod
    def mark_broadcast(*, withdrawal_id: int, tx_hash: str) -> list[Write]:
        """The first acceptance moves ``signed`` to ``broadcast``; ``expect_rows`` makes a second one a
        StaleWrite, so its event is written once."""
        now = utc_now()
        return [
            Write("UPDATE withdrawal_attempts SET status = 'broadcast', updated_at = ? WHERE withdrawal_id = ?"
                  " AND tx_hash = ? AND status = 'signed'", (now, withdrawal_id, tx_hash)),
            Write("UPDATE withdrawals SET status = 'broadcast', updated_at = ?, failures = 0, last_error = NULL,"
                  " retry_at = NULL WHERE id = ? AND status = 'signed'", (now, withdrawal_id), expect_rows=1),
        ]

    @staticmethod
    def mark_attempt_broadcast(*, withdrawal_id: int, tx_hash: str) -> Write:
        return Write("UPDATE withdrawal_attempts SET status = 'broadcast', updated_at = ? WHERE withdrawal_id = ?"
                     " AND tx_hash = ? AND status = 'signed'", (utc_now(), withdrawal_id, tx_hash))

    @staticmethod
    def mark_mined(*, withdrawal_id: int, tx_hash: str, block_number: int) -> list[Write]:
        now = utc_now()
        return [
            Write("UPDATE withdrawal_attempts SET status = 'mined', block_number = ?, updated_at = ?"
                  " WHERE withdrawal_id = ? AND tx_hash = ?", (block_number, now, withdrawal_id, tx_hash), expect_rows=1),
            Write("UPDATE withdrawals SET tx_hash = ?, updated_at = ? WHERE id = ? AND status IN ('signed', 'broadcast')",
                  (tx_hash, now, withdrawal_id)),
        ]

    @staticmethod
    def daily_limit_writes(limit: DailyLimit) -> list[Write]:
        """The daily-limit check, for the hold's own transaction: lock the (user, asset) row (an upsert
        holds a row lock to commit on PostgreSQL; SQLite has one writer), then sum the day's requests
        (summed in Python: amounts are TEXT on SQLite) and refuse if this one would pass the limit.
        Run before the row's insert, so the sum never counts the request itself."""
        return [
            Write("INSERT INTO withdrawal_limit_locks (user_id, asset, locked_at) VALUES (?, ?, ?)"
                  " ON CONFLICT (user_id, asset) DO UPDATE SET locked_at = excluded.locked_at",
                  (limit.user_id, f"{limit.chain}:{limit.asset}", utc_now())),
            Write("SELECT amount_minor FROM withdrawals WHERE user_id = ? AND chain = ? AND asset = ?"
                  " AND created_at >= ? AND status <> 'failed' LIMIT ?",
                  (limit.user_id, limit.chain, limit.asset, limit.since, DAILY_ROWS_MAX + 1), check=limit.check),
        ]

    @staticmethod
    def incident(*, withdrawal_id: int, chain: str, reason: str) -> list[Write]:
        """Mark the chain disagreeing with our records, and freeze the chain's new withdrawals: one unit."""
        from teller.storage.freezes import Freezes

        now = utc_now()
        return [
            Write("UPDATE withdrawals SET incident_reason = ?, incident_at = ?, updated_at = ? WHERE id = ?"
                  " AND incident_reason IS NULL AND status IN ('pending', 'signed', 'broadcast')",
                  (reason[:ERROR_TEXT_MAX], now, now, withdrawal_id), expect_rows=1),
            Freezes.freeze_write(f"withdrawal:{withdrawal_id}", scope="chain", chain=chain,
                                 reason=f"withdrawal {withdrawal_id}: {reason}"),
        ]

    @staticmethod
    def park(*, withdrawal_id: int, error: str, retry_at: datetime) -> Write:
        """A step of this row failed: count it, keep the reason, and leave the row out until ``retry_at``."""
        return Write("UPDATE withdrawals SET failures = failures + 1, last_error = ?, retry_at = ?, updated_at = ?"
                     " WHERE id = ? AND status IN ('pending', 'signed', 'broadcast')",
                     (error[:ERROR_TEXT_MAX], retry_at, utc_now(), withdrawal_id))

    @staticmethod
    def unpark(*, withdrawal_id: int) -> Write:
        return Write("UPDATE withdrawals SET failures = 0, last_error = NULL, retry_at = NULL WHERE id = ?"
                     " AND failures > 0", (withdrawal_id,))

    @staticmethod
    def finish(*, withdrawal_id: int, status: str, failure_reason: str | None = None) -> Write:
        """The end of a withdrawal; written in the ledger transaction that settles or voids its hold."""
        assert status in ("confirmed", "failed")
        return Write("UPDATE withdrawals SET status = ?, failure_reason = ?, updated_at = ? WHERE id = ?"
                     " AND status IN ('pending', 'signed', 'broadcast')",
                     (status, failure_reason, utc_now(), withdrawal_id), expect_rows=1)

    async def run(self, writes: Sequence[Write]) -> list[int]:
        return await self._store.run_atomic(writes)
