"""The portable query API, migrations, users and outbox, on both backends."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from teller.storage import Event, StaleWrite, UniqueViolation, Write, open_store, utc_now
from teller.storage.postgres import translate_placeholders


def test_placeholders_are_numbered_outside_literals() -> None:
    assert translate_placeholders("SELECT ? , '?', \"a?\" FROM t WHERE x = ?") == \
        "SELECT $1 , '?', \"a?\" FROM t WHERE x = $2"


async def test_reopening_applies_no_migration_twice(store, store_url) -> None:
    again = await open_store(store_url)
    try:
        rows = await again.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
        from teller.storage.schema import MIGRATIONS

        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
    finally:
        await again.close()


async def test_rows_come_back_with_the_same_types_on_both_backends(store) -> None:
    user = await store.users.get_or_create(telegram_id=77, username="bob", first_name="Bob")
    when = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    huge = 2**200 + 7
    await store.execute(
        "INSERT INTO deposits (user_id, chain, asset, address, tx_hash, log_index, amount_minor, block_number,"
        " block_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        user.id, "ethereum", "ETH", "0xabc", "0x01", 0, huge, 10, "0xb", when)
    row = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", "0x01")
    assert row is not None
    assert row["amount_minor"] == huge and type(row["amount_minor"]) is int
    assert row["created_at"] == when
    assert row["status"] == "pending"
    assert isinstance(row["updated_at"], datetime) and row["updated_at"].tzinfo is not None
    assert await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", "nope") is None


async def test_run_atomic_is_all_or_nothing(store) -> None:
    ok = Write("INSERT INTO sync_cursors (name, cursor) VALUES (?, ?)", ("a", "1"))
    with pytest.raises(UniqueViolation):
        await store.run_atomic([ok, Write("INSERT INTO sync_cursors (name, cursor) VALUES (?, ?)", ("a", "2"))])
    assert await store.fetch_all("SELECT * FROM sync_cursors") == []
    assert await store.run_atomic([ok]) == [1]
    with pytest.raises(StaleWrite):
        await store.run_atomic([
            Write("INSERT INTO sync_cursors (name, cursor) VALUES (?, ?)", ("b", "1")),
            Write("UPDATE sync_cursors SET cursor = ? WHERE name = ?", ("9", "missing"), expect_rows=1),
        ])
    assert [r["name"] for r in await store.fetch_all("SELECT name FROM sync_cursors")] == ["a"]
    assert await store.execute("UPDATE sync_cursors SET cursor = ? WHERE name = ?", "5", "a") == 1


async def test_unique_constraints_the_flows_rely_on(store) -> None:
    user = await store.users.get_or_create(telegram_id=1)
    other = await store.users.get_or_create(telegram_id=2)
    add = "INSERT INTO deposit_addresses (user_id, chain, address, hd_index) VALUES (?, ?, ?, ?)"
    await store.execute(add, user.id, "ethereum", "0xa", 1)
    for args in ((user.id, "ethereum", "0xb", 2), (other.id, "ethereum", "0xa", 3), (other.id, "ethereum", "0xc", 1)):
        with pytest.raises(UniqueViolation):
            await store.execute(add, *args)
    await store.execute("INSERT INTO cards (user_id, card_hash, card_masked) VALUES (?, ?, ?)", user.id, "h", "6037**")
    with pytest.raises(UniqueViolation):
        await store.execute("INSERT INTO cards (user_id, card_hash, card_masked) VALUES (?, ?, ?)", other.id, "h", "6037**")


async def test_get_or_create_user_is_race_safe(store) -> None:
    users = await asyncio.gather(*(store.users.get_or_create(telegram_id=42, username=f"u{i}") for i in range(30)))
    assert len({u.id for u in users}) == 1
    again = await store.users.get(users[0].id)
    assert again is not None and again.telegram_id == 42
    assert await store.users.get(999_999) is None
    assert (await store.users.get_by_telegram_id(42)).id == users[0].id


async def test_outbox_reads_in_order_marks_and_reports_backlog(store) -> None:
    assert (await store.outbox.backlog()).size == 0
    assert (await store.outbox.backlog()).oldest_age_s is None
    for i in range(5):
        await store.outbox.add(Event("thing.happened", {"n": i}))
    first = await store.outbox.undelivered(limit=3)
    assert [e.payload["n"] for e in first] == [0, 1, 2]
    assert await store.outbox.mark_delivered([e.id for e in first]) == 3
    assert await store.outbox.mark_delivered([first[0].id]) == 0  # already delivered
    rest = await store.outbox.undelivered()
    assert [e.payload["n"] for e in rest] == [3, 4]
    backlog = await store.outbox.backlog()
    assert backlog.size == 2 and backlog.oldest_age_s is not None and backlog.oldest_age_s >= 0
    assert rest[0].created_at <= utc_now()


async def test_fetch_small_sees_every_committed_write(store) -> None:  # type: ignore[no-untyped-def]
    # The SQLite backend answers it inline on its own read connection: it must never lag the writer.
    for telegram_id in range(1, 6):
        user = await store.users.get_or_create(telegram_id=telegram_id)
        rows = await store.fetch_small("SELECT id FROM users WHERE telegram_id = ?", telegram_id)
        assert rows == [{"id": user.id}]
    assert len(await store.fetch_small("SELECT id FROM users")) == 5
