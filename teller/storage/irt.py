"""The IRT flow's rows: statement lines (matched, unmatched, assigned), sync cursors.

Reads are plain queries; every write that accompanies money is returned as a ``Write`` so the
caller puts it in the same DB transaction as the ledger transfer (``ledger.transfer(writes=...)``).
Cards, IBANs and identities are ``teller.storage.owners``. A line keeps its card as mask and keyed
hash (with the key id), never the full number, and the reason it went to suspense.
A statement line is inserted only together with the transfer that credits it (to a user, or to
``suspense:irt``), so "the line is stored" and "the line is credited" are one fact: a line row
without its transfer, or a transfer without its row, cannot exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from teller.storage.store import Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Row, Store

__all__ = [
    "IrtRepository",
    "LineRow",
    "LINE_MATCHED",
    "LINE_UNMATCHED",
    "LINE_ASSIGNED",
    "LIST_LIMIT_MAX",
]

LINE_MATCHED, LINE_UNMATCHED, LINE_ASSIGNED = "matched", "unmatched", "assigned"
LIST_LIMIT_MAX = 200            # rows in one listing (deposits, unmatched lines)


@dataclass(frozen=True, slots=True)
class LineRow:
    id: int
    bank_reference: str
    amount_minor: int
    source_iban: str | None
    source_card_masked: str | None
    source_card_hash: str | None
    source_card_key_id: str | None
    occurred_at: datetime | None
    status: str
    user_id: int | None
    reason: str | None
    assigned_by: str | None
    created_at: datetime
    updated_at: datetime


def _line(row: Row) -> LineRow:
    return LineRow(
        id=int(row["id"]), bank_reference=row["bank_reference"], amount_minor=row["amount_minor"],
        source_iban=row["source_iban"], source_card_masked=row["source_card_masked"],
        source_card_hash=row["source_card_hash"], source_card_key_id=row["source_card_key_id"],
        occurred_at=row["occurred_at"], status=row["status"],
        user_id=None if row["user_id"] is None else int(row["user_id"]),
        reason=row["reason"], assigned_by=row["assigned_by"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


_LINE_COLUMNS = ("id, bank_reference, amount_minor, source_iban, source_card_masked, source_card_hash,"
                 " source_card_key_id, occurred_at, status, user_id, reason, assigned_by, created_at, updated_at")


class IrtRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- statement lines -------------------------------------------------------------------------
    async def line_by_reference(self, bank_reference: str) -> LineRow | None:
        row = await self._store.fetch_one(
            f"SELECT {_LINE_COLUMNS} FROM statement_lines WHERE bank_reference = ?", bank_reference)
        return None if row is None else _line(row)

    async def line(self, line_id: int) -> LineRow | None:
        row = await self._store.fetch_one(f"SELECT {_LINE_COLUMNS} FROM statement_lines WHERE id = ?", line_id)
        return None if row is None else _line(row)

    async def unmatched(self, *, limit: int = LIST_LIMIT_MAX, after_id: int = 0) -> list[LineRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_LINE_COLUMNS} FROM statement_lines WHERE status = 'unmatched' AND id > ? ORDER BY id LIMIT ?",
            after_id, _bounded(limit))
        return [_line(r) for r in rows]

    async def deposits_of(self, user_id: int, *, limit: int = LIST_LIMIT_MAX) -> list[LineRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_LINE_COLUMNS} FROM statement_lines WHERE user_id = ? AND status IN ('matched', 'assigned')"
            " ORDER BY id DESC LIMIT ?", user_id, _bounded(limit))
        return [_line(r) for r in rows]

    @staticmethod
    def insert_line(*, bank_reference: str, amount_minor: int, source_iban: str | None,
                    source_card_masked: str | None, source_card_hash: str | None, source_card_key_id: str | None,
                    occurred_at: datetime, status: str, user_id: int | None, reason: str | None) -> Write:
        assert status in (LINE_MATCHED, LINE_UNMATCHED)
        assert (status == LINE_MATCHED) == (user_id is not None), "a matched line names its user, no other does"
        assert (status == LINE_UNMATCHED) == (reason is not None), "a line in suspense says why, no other does"
        assert (source_card_hash is None) == (source_card_key_id is None), "a hash carries its key id"
        now = utc_now()
        return Write(
            "INSERT INTO statement_lines (bank_reference, amount_minor, source_iban, source_card_masked,"
            " source_card_hash, source_card_key_id, occurred_at, status, user_id, reason, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bank_reference, amount_minor, source_iban, source_card_masked, source_card_hash, source_card_key_id,
             occurred_at, status, user_id, reason, now, now), expect_rows=1,
        )

    @staticmethod
    def assign_line(*, line_id: int, user_id: int, operator: str) -> Write:
        """unmatched -> assigned, only from unmatched: a second assignment touches no row (StaleWrite)."""
        return Write(
            "UPDATE statement_lines SET status = 'assigned', user_id = ?, assigned_by = ?, updated_at = ?"
            " WHERE id = ? AND status = 'unmatched'",
            (user_id, operator, utc_now(), line_id), expect_rows=1,
        )

    # -- the statement cursor --------------------------------------------------------------------
    async def cursor(self, name: str) -> str | None:
        row = await self._store.fetch_one("SELECT cursor FROM sync_cursors WHERE name = ?", name)
        return None if row is None else str(row["cursor"])

    async def save_cursor(self, name: str, cursor: str) -> None:
        await self._store.execute(
            "INSERT INTO sync_cursors (name, cursor, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
            name, cursor, utc_now(),
        )


def _bounded(limit: Any) -> int:
    return max(1, min(int(limit), LIST_LIMIT_MAX))
