"""The IRT flow's rows: verified cards, statement lines (matched, unmatched, assigned), sync cursors.

Reads are plain queries; every write that accompanies money is returned as a ``Write`` so the
caller puts it in the same DB transaction as the ledger transfer (``ledger.transfer(writes=...)``).
A card is stored as its keyed hash (``card_hash``, for matching) and its mask; never the full number.
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
    "CardRow",
    "LineRow",
    "LINE_MATCHED",
    "LINE_UNMATCHED",
    "LINE_ASSIGNED",
    "LIST_LIMIT_MAX",
    "MATCH_CANDIDATES_MAX",
]

LINE_MATCHED, LINE_UNMATCHED, LINE_ASSIGNED = "matched", "unmatched", "assigned"
LIST_LIMIT_MAX = 200            # rows in one listing (cards, deposits, unmatched lines)
MATCH_CANDIDATES_MAX = 8        # users one source can name before we stop counting: > 1 is ambiguous anyway


@dataclass(frozen=True, slots=True)
class CardRow:
    id: int
    user_id: int
    card_masked: str
    iban: str | None
    owner_name: str | None
    bank: str | None
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LineRow:
    id: int
    bank_reference: str
    amount_minor: int
    source_iban: str | None
    source_card_masked: str | None
    occurred_at: datetime | None
    status: str
    user_id: int | None
    created_at: datetime
    updated_at: datetime


def _card(row: Row) -> CardRow:
    return CardRow(
        id=int(row["id"]), user_id=int(row["user_id"]), card_masked=row["card_masked"], iban=row["iban"],
        owner_name=row["owner_name"], bank=row["bank"], status=row["status"], created_at=row["created_at"],
    )


def _line(row: Row) -> LineRow:
    return LineRow(
        id=int(row["id"]), bank_reference=row["bank_reference"], amount_minor=row["amount_minor"],
        source_iban=row["source_iban"], source_card_masked=row["source_card_masked"],
        occurred_at=row["occurred_at"], status=row["status"],
        user_id=None if row["user_id"] is None else int(row["user_id"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


_LINE_COLUMNS = ("id, bank_reference, amount_minor, source_iban, source_card_masked, occurred_at, status, user_id,"
                 " created_at, updated_at")
_CARD_COLUMNS = "id, user_id, card_masked, iban, owner_name, bank, status, created_at"


class IrtRepository:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- cards -----------------------------------------------------------------------------------
    async def card_by_hash(self, card_hash: str) -> CardRow | None:
        row = await self._store.fetch_one(f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_hash = ?", card_hash)
        return None if row is None else _card(row)

    async def cards_of(self, user_id: int, *, limit: int = LIST_LIMIT_MAX) -> list[CardRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE user_id = ? ORDER BY id LIMIT ?", user_id, _bounded(limit))
        return [_card(r) for r in rows]

    async def count_cards_of(self, user_id: int) -> int:
        row = await self._store.fetch_one("SELECT COUNT(*) AS n FROM cards WHERE user_id = ?", user_id)
        return int(row["n"]) if row else 0

    @staticmethod
    def insert_card(*, user_id: int, card_hash: str, card_masked: str, iban: str, owner_name: str | None,
                    bank: str | None) -> Write:
        return Write(
            "INSERT INTO cards (user_id, card_hash, card_masked, iban, owner_name, bank, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'verified', ?)",
            (user_id, card_hash, card_masked, iban, owner_name, bank, utc_now()), expect_rows=1,
        )

    # -- matching: which users a source names (verified cards only) -------------------------------
    async def users_by_card_hash(self, card_hash: str) -> set[int]:
        return await self._users("SELECT DISTINCT user_id FROM cards WHERE card_hash = ? AND status = 'verified'"
                                 " LIMIT ?", card_hash)

    async def users_by_card_mask(self, card_masked: str) -> set[int]:
        return await self._users("SELECT DISTINCT user_id FROM cards WHERE card_masked = ? AND status = 'verified'"
                                 " LIMIT ?", card_masked)

    async def users_by_iban(self, iban: str) -> set[int]:
        return await self._users("SELECT DISTINCT user_id FROM cards WHERE iban = ? AND status = 'verified'"
                                 " LIMIT ?", iban)

    async def _users(self, sql: str, value: str) -> set[int]:
        rows = await self._store.fetch_all(sql, value, MATCH_CANDIDATES_MAX)
        return {int(r["user_id"]) for r in rows}

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
                    source_card_masked: str | None, source_card_hash: str | None, occurred_at: datetime,
                    status: str, user_id: int | None) -> Write:
        assert status in (LINE_MATCHED, LINE_UNMATCHED)
        assert (status == LINE_MATCHED) == (user_id is not None), "a matched line names its user, no other does"
        now = utc_now()
        return Write(
            "INSERT INTO statement_lines (bank_reference, amount_minor, source_iban, source_card_masked,"
            " source_card_hash, occurred_at, status, user_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bank_reference, amount_minor, source_iban, source_card_masked, source_card_hash, occurred_at,
             status, user_id, now, now), expect_rows=1,
        )

    @staticmethod
    def assign_line(*, line_id: int, user_id: int) -> Write:
        """unmatched -> assigned, only from unmatched: a second assignment touches no row (StaleWrite)."""
        return Write(
            "UPDATE statement_lines SET status = 'assigned', user_id = ?, updated_at = ?"
            " WHERE id = ? AND status = 'unmatched'",
            (user_id, utc_now(), line_id), expect_rows=1,
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
