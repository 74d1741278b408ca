"""The withdrawals repository: withdrawal rows, their signed attempts, and the hot wallets' nonces.

Tables (``teller.storage.schema``, migration 1): ``withdrawals`` (one per accepted request, unique per
``(user_id, idempotency_key)``), ``withdrawal_attempts`` (every signed transaction, replacements
included, unique per ``(chain, tx_hash)``) and ``address_nonces`` (the next nonce of each hot wallet).

Status of a withdrawal, each step a conditional update (``WHERE status = <what we saw>``):

    pending --sign + nonce, one transaction--> signed --node accepted--> broadcast --confirmed-->
    confirmed;  signed|broadcast --reverted / nonce taken by another transaction--> failed

Reads return plain rows; writes are returned as ``Write`` objects so the caller puts them into the
same DB transaction as the ledger change or the nonce they belong with.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from teller.storage.store import Row, Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Withdrawals", "UNFINISHED", "PAGE_MAX", "UNFINISHED_BATCH_MAX"]

UNFINISHED = ("pending", "signed", "broadcast")
PAGE_MAX = 100
UNFINISHED_BATCH_MAX = 200     # withdrawals one actor tick looks at
ATTEMPTS_PER_WITHDRAWAL_MAX = 64  # replacements are bounded: past it ops must look
DAILY_ROWS_MAX = 10_000        # a user's withdrawals of one asset in one day that we sum


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
        nonce) or not yet signed. Two queries, so in-flight ones never starve new ones of a batch."""
        statuses = "('signed', 'broadcast')" if in_flight else "('pending')"
        order = "nonce" if in_flight else "id"
        return await self._store.fetch_all(
            f"SELECT * FROM withdrawals WHERE chain = ? AND status IN {statuses} ORDER BY {order} LIMIT ?",
            chain, max(1, min(limit, UNFINISHED_BATCH_MAX)))

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
        """Every signed transaction of a withdrawal, oldest first."""
        return await self._store.fetch_all(
            "SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ? ORDER BY id LIMIT ?",
            withdrawal_id, ATTEMPTS_PER_WITHDRAWAL_MAX)

    async def amount_since(self, user_id: int, asset: str, since: datetime) -> int:
        """What the user asked to withdraw of ``asset`` (symbol, every chain) since ``since``, failed
        ones excluded. Summed here, not in SQL: amounts are TEXT on SQLite."""
        rows = await self._store.fetch_all(
            "SELECT amount_minor FROM withdrawals WHERE user_id = ? AND asset = ? AND created_at >= ?"
            " AND status <> 'failed' LIMIT ?", user_id, asset, since, DAILY_ROWS_MAX)
        return sum(r["amount_minor"] for r in rows)

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
            Write("UPDATE withdrawals SET status = 'signed', nonce = ?, from_address = ?, tx_hash = ?, updated_at = ?"
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
            Write("UPDATE withdrawals SET status = 'broadcast', updated_at = ? WHERE id = ? AND status = 'signed'",
                  (now, withdrawal_id), expect_rows=1),
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
    def finish(*, withdrawal_id: int, status: str, failure_reason: str | None = None) -> Write:
        """The end of a withdrawal; written in the ledger transaction that settles or voids its hold."""
        assert status in ("confirmed", "failed")
        return Write("UPDATE withdrawals SET status = ?, failure_reason = ?, updated_at = ? WHERE id = ?"
                     " AND status IN ('pending', 'signed', 'broadcast')",
                     (status, failure_reason, utc_now(), withdrawal_id), expect_rows=1)

    async def run(self, writes: Sequence[Write]) -> list[int]:
        return await self._store.run_atomic(writes)
