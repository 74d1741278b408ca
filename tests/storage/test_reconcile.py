"""The reconciler's cursors: what is checked, what waits, and a restart reading back the same."""

from __future__ import annotations

from typing import Any

from teller.storage.reconcile import GAP_WAIT_S, OPEN_MAX, ROWS_PER_PASS_MAX, ReconcileReads, RowCursor


def test_missing_ids_wait_as_gaps_until_seen_or_too_old() -> None:
    cursor = RowCursor()
    cursor.advance([1, 2, 5], new_after=5, now_s=100.0)
    assert (cursor.after, sorted(cursor.gaps)) == (5, [3, 4])
    assert cursor.waiting() == [3, 4]
    cursor.advance([3], new_after=5, now_s=101.0)
    assert sorted(cursor.gaps) == [4]
    cursor.advance([], new_after=5, now_s=100.0 + GAP_WAIT_S + 1)
    assert cursor.gaps == {}


def test_open_rows_wait_and_fill_the_room() -> None:
    cursor = RowCursor(after=10, open={3, 7})
    assert cursor.waiting() == [3, 7] and cursor.room == ROWS_PER_PASS_MAX
    cursor.open = set(range(OPEN_MAX))
    assert cursor.room == 0


async def test_a_cursor_saved_is_the_cursor_read(store: Any) -> None:
    reads = ReconcileReads(store)
    assert await reads.cursor("reconcile:x") == RowCursor()
    cursor = RowCursor(after=42, open={3, 9}, gaps={40: 1234.5})
    await store.run_atomic([reads.save_cursor("reconcile:x", cursor)])
    await store.run_atomic([reads.save_cursor("reconcile:x", cursor)])   # an upsert
    assert await reads.cursor("reconcile:x") == cursor
