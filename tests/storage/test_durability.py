"""Every commit waits for the disk: SQLite runs synchronous=FULL, PostgreSQL synchronous_commit=on.

What is checked is the setting each of the store's own connections runs with, read back through
the store. That the disk then keeps a commit across a power cut cannot be tested here (no power to
cut; this machine's disk is a VM's virtio disk whose flushes the host may or may not honour).
Then what pays for it on SQLite: concurrent ``execute`` calls share one transaction (one fsync),
and each still succeeds or fails alone.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from teller.storage import UniqueViolation, chain_account, open_store, user_account
from teller.storage.postgres import POOL_SIZE_MAX
from teller.storage.sqlite import SqliteStore
from tests.fixtures.store import PG_DSN, drop_schema

SQLITE_SYNCHRONOUS_FULL = 2  # what PRAGMA synchronous reads for FULL


async def test_sqlite_connections_run_synchronous_full(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'teller.db'}")
    try:
        await store.ledger.transfer(debit=chain_account("bank", "IRT"), credit=user_account(1, "IRT"),
                                    asset="IRT", amount=10, key="k1")  # a commit: nothing on the way resets it
        writer = await store.fetch_one("PRAGMA synchronous")              # the writer, on the store's thread
        reader = await store.fetch_small("PRAGMA synchronous")            # the inline reader, on the loop
        journal = await store.fetch_one("PRAGMA journal_mode")
        assert writer is not None and writer["synchronous"] == SQLITE_SYNCHRONOUS_FULL
        assert reader and reader[0]["synchronous"] == SQLITE_SYNCHRONOUS_FULL
        assert journal is not None and journal["journal_mode"] == "wal"  # FULL in WAL: an fsync per COMMIT
    finally:
        await store.close()


async def _pg_settings(store) -> list[str]:  # type: ignore[no-untyped-def]
    """``SHOW synchronous_commit`` on every connection the pool can hand out, all held at once."""
    pool = store._pool
    conns = [await pool.acquire() for _ in range(POOL_SIZE_MAX)]
    try:
        return [await c.fetchval("SHOW synchronous_commit") for c in conns]
    finally:
        await asyncio.gather(*(pool.release(c) for c in conns))


@pytest.mark.usefixtures("_postgres_up")
async def test_postgres_connections_run_synchronous_commit_on() -> None:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = await open_store(f"{PG_DSN}?schema={schema}")
    try:
        await store.ledger.transfer(debit=chain_account("bank", "IRT"), credit=user_account(1, "IRT"),
                                    asset="IRT", amount=10, key="k1")
        assert await store.fetch_one("SHOW synchronous_commit") == {"synchronous_commit": "on"}
        assert await _pg_settings(store) == ["on"] * POOL_SIZE_MAX
    finally:
        await store.close()
        await drop_schema(schema)


@pytest.mark.usefixtures("_postgres_up")
async def test_postgres_url_cannot_turn_synchronous_commit_off() -> None:
    # asyncpg sends a URL's unknown query parameters as server settings: the store's own wins
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = await open_store(f"{PG_DSN}?schema={schema}&synchronous_commit=off")
    try:
        assert await _pg_settings(store) == ["on"] * POOL_SIZE_MAX
    finally:
        await store.close()
        await drop_schema(schema)


@pytest.mark.usefixtures("_postgres_up")
async def test_postgres_no_ledger_function_sets_synchronous_commit() -> None:
    # a function's SET clause would override the session's setting inside every ledger batch
    schema = f"t_{uuid.uuid4().hex[:16]}"
    store = await open_store(f"{PG_DSN}?schema={schema}")
    try:
        rows = await store.fetch_all(
            "SELECT p.proname, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = ?", schema)
        assert rows, "the ledger's functions are installed in the store's schema"
        assert not [r for r in rows if any("synchronous_commit" in c for c in (r["proconfig"] or []))]
    finally:
        await store.close()
        await drop_schema(schema)



_CURSOR = "INSERT INTO sync_cursors (name, cursor, updated_at) VALUES (?, ?, '2024-01-01T00:00:00+00:00')"


async def test_concurrent_executes_succeed_or_fail_alone(store) -> None:
    await store.execute(_CURSOR, "taken", "0")
    names = [f"c{i}" for i in range(40)] + ["taken"] + [f"d{i}" for i in range(40)]
    results = await asyncio.gather(*(store.execute(_CURSOR, name, "1") for name in names), return_exceptions=True)
    assert isinstance(results[40], UniqueViolation)
    assert results[:40] == [1] * 40 and results[41:] == [1] * 40
    rows = await store.fetch_all("SELECT name, cursor FROM sync_cursors ORDER BY name")
    assert len(rows) == 81 and {"name": "taken", "cursor": "0"} in rows


async def test_sqlite_concurrent_executes_share_a_commit(tmp_path, monkeypatch) -> None:
    groups: list[int] = []
    run_group = SqliteStore._execute_group

    def counting(self, group):  # type: ignore[no-untyped-def]
        groups.append(len(group))
        return run_group(self, group)

    monkeypatch.setattr(SqliteStore, "_execute_group", counting)
    store = await open_store(f"sqlite:///{tmp_path / 'teller.db'}")
    try:
        await asyncio.gather(*(store.execute(_CURSOR, f"c{i}", "1") for i in range(100)))
        assert sum(groups) == 100 and len(groups) <= 2  # the first alone at most, then the rest together
    finally:
        await store.close()


async def test_sqlite_execute_cancelled_while_waiting_never_runs(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'teller.db'}")
    try:
        assert isinstance(store, SqliteStore)
        gate = threading.Event()
        busy = asyncio.get_running_loop().run_in_executor(store._thread, gate.wait)  # the store's thread is busy
        first = asyncio.ensure_future(store.execute(_CURSOR, "first", "1"))
        while store._writes_flusher is None or store._writes_waiting:
            await asyncio.sleep(0)  # until "first" is taken as a group, queued behind the busy thread
        second = asyncio.ensure_future(store.execute(_CURSOR, "second", "1"))
        await asyncio.sleep(0)
        second.cancel()
        gate.set()
        await busy
        assert await first == 1
        with pytest.raises(asyncio.CancelledError):
            await second
        assert await store.fetch_all("SELECT name FROM sync_cursors") == [{"name": "first"}]
    finally:
        await store.close()


async def test_sqlite_close_answers_every_waiting_execute(tmp_path) -> None:
    path = tmp_path / "teller.db"
    store = await open_store(f"sqlite:///{path}")
    writes = [asyncio.ensure_future(store.execute(_CURSOR, f"c{i}", "1")) for i in range(50)]
    await asyncio.sleep(0)
    await store.close()
    assert [w.result() for w in writes] == [1] * 50
    again = await open_store(f"sqlite:///{path}")
    try:
        assert len(await again.fetch_all("SELECT name FROM sync_cursors")) == 50
    finally:
        await again.close()
