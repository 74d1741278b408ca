"""What the reconciler reads and keeps: its cursors over withdrawals and deposits, and the rows it checks.

A cursor (``RowCursor``, one row of ``sync_cursors`` as JSON) says which rows of a table are checked:
every id up to ``after``, except the ``open`` ones (not finished yet, or finished and waiting for the
chain to know their transaction) and the ``gaps`` (ids not seen yet: on PostgreSQL an id below a
committed one may commit later; a rolled-back insert never does, so a gap is forgotten after
``GAP_WAIT_S``). Each pass reads the open ids, the gaps and the next ``ROWS_PER_PASS_MAX`` rows, and
the cursor is saved in the same transaction as any freeze the pass writes, so a restart resumes where
the last commit left it and a finding is never lost between the two. When ``OPEN_MAX`` rows are open,
the cursor stops taking new rows (the status says so) rather than forget any.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from teller.storage.store import Row, Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["RowCursor", "ReconcileReads", "WITHDRAWALS_CURSOR", "DEPOSITS_CURSOR", "ROWS_PER_PASS_MAX", "OPEN_MAX"]

WITHDRAWALS_CURSOR = "reconcile:withdrawals"
DEPOSITS_CURSOR = "reconcile:deposits"
ROWS_PER_PASS_MAX = 500      # new rows of a table taken per pass
OPEN_MAX = 5_000             # rows of a table waiting at once
GAPS_MAX = 1_000
GAP_WAIT_S = 300.0
IDS_PER_QUERY_MAX = 200


@dataclass(slots=True)
class RowCursor:
    after: int = 0
    open: set[int] = field(default_factory=set)
    gaps: dict[int, float] = field(default_factory=dict)   # id -> when first missed (epoch seconds)

    @classmethod
    def parse(cls, text: str | None) -> RowCursor:
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(after=int(doc["after"]), open={int(i) for i in doc.get("open", ())},
                   gaps={int(i): float(t) for i, t in doc.get("gaps", {}).items()})

    def dump(self) -> str:
        return json.dumps({"after": self.after, "open": sorted(self.open),
                           "gaps": {str(i): t for i, t in sorted(self.gaps.items())}}, separators=(",", ":"))

    @property
    def room(self) -> int:
        """New rows the next pass may take."""
        return max(0, min(ROWS_PER_PASS_MAX, OPEN_MAX - len(self.open)))

    def waiting(self) -> list[int]:
        return sorted(self.open | self.gaps.keys())

    def advance(self, seen: Sequence[int], *, new_after: int, now_s: float) -> None:
        """Rows ``seen`` (re-read open ids and gaps, and the new rows up to ``new_after``) were read."""
        present = set(seen)
        for gap in present & self.gaps.keys():
            del self.gaps[gap]
        for missing in range(max(self.after, new_after - GAPS_MAX) + 1, new_after + 1):
            if missing not in present:
                self.gaps.setdefault(missing, now_s)
        self.after = max(self.after, new_after)
        self.gaps = {i: t for i, t in self.gaps.items() if now_s - t <= GAP_WAIT_S and i not in self.open}
        while len(self.gaps) > GAPS_MAX:
            del self.gaps[min(self.gaps)]


class ReconcileReads:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def cursor(self, name: str) -> RowCursor:
        row = await self._store.fetch_one("SELECT cursor FROM sync_cursors WHERE name = ?", name)
        return RowCursor.parse(None if row is None else str(row["cursor"]))

    @staticmethod
    def save_cursor(name: str, cursor: RowCursor) -> Write:
        return Write("INSERT INTO sync_cursors (name, cursor, updated_at) VALUES (?, ?, ?) ON CONFLICT (name)"
                     " DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                     (name, cursor.dump(), utc_now()))

    async def rows(self, table: str, cursor: RowCursor) -> tuple[list[Row], int, bool]:
        """The cursor's waiting rows and up to ``room`` new ones, by id; the highest new id read; and
        whether more new rows may be waiting (the room was filled)."""
        assert table in ("withdrawals", "deposits")
        rows = await self._in(f"SELECT * FROM {table} WHERE id IN ({{}}) ORDER BY id", cursor.waiting())
        room = cursor.room
        new = await self._store.fetch_all(f"SELECT * FROM {table} WHERE id > ? ORDER BY id LIMIT ?",
                                          cursor.after, room) if room else []
        return rows + new, (new[-1]["id"] if new else cursor.after), 0 < room == len(new)

    async def attempts(self, withdrawal_ids: Sequence[int]) -> dict[int, list[Row]]:
        """Every signed transaction of each withdrawal (all of them: any one may be the one mined)."""
        found: dict[int, list[Row]] = {i: [] for i in withdrawal_ids}
        for row in await self._in("SELECT * FROM withdrawal_attempts WHERE withdrawal_id IN ({}) ORDER BY id",
                                  withdrawal_ids):
            found[row["withdrawal_id"]].append(row)
        return found

    async def credited_of(self, chain: str, tx_hashes: Sequence[str]) -> list[Row]:
        """Every credited deposit of these transactions on ``chain``, checked or not."""
        rows: list[Row] = []
        hashes = sorted(set(tx_hashes))
        for start in range(0, len(hashes), IDS_PER_QUERY_MAX):
            chunk = hashes[start:start + IDS_PER_QUERY_MAX]
            rows += await self._store.fetch_all(
                f"SELECT * FROM deposits WHERE chain = ? AND status = 'credited' AND tx_hash IN"
                f" ({', '.join('?' for _ in chunk)}) ORDER BY id", chain, *chunk)
        return rows

    async def _in(self, sql: str, ids: Sequence[int]) -> list[Row]:
        rows: list[Row] = []
        for start in range(0, len(ids), IDS_PER_QUERY_MAX):
            chunk = list(ids[start:start + IDS_PER_QUERY_MAX])
            rows += await self._store.fetch_all(sql.format(", ".join("?" for _ in chunk)), *chunk)
        return rows
