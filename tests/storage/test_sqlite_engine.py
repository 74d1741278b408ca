"""The SQLite ledger engine's own memory: what it keeps between batches never outlives a failure."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from teller.errors import InsufficientFunds
from teller.storage import StorageError, Transfer, chain_account, hot_account, open_store, user_account, utc_now
from teller.storage import _engine_sqlite
from teller.storage.ledger import _transfer_request

ASSET = "IRT"


async def test_a_batch_that_fails_after_deciding_leaves_no_trace_in_the_next(tmp_path, monkeypatch) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                    amount=10, key="fund")
        flush = _engine_sqlite._Batch._flush

        def failing_flush(self) -> None:
            raise _engine_sqlite.sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(_engine_sqlite._Batch, "_flush", failing_flush)
        with pytest.raises(StorageError):
            await store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET),
                                        asset=ASSET, amount=10, key="lost")
        monkeypatch.setattr(_engine_sqlite._Batch, "_flush", flush)
        # the failed debit was decided in memory before the write failed; the balance is still 10
        spent = await store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET),
                                            asset=ASSET, amount=10, key="spent")
        assert not spent.replayed
        assert await store.ledger.get("lost") is None
        assert not await store.ledger.check_invariants()
    finally:
        await store.close()


class _CommitThenOther:
    """The writer's connection, with another process committing the moment after our COMMIT."""

    def __init__(self, conn: sqlite3.Connection, other_commit) -> None:
        self._conn, self._other_commit = conn, other_commit

    def __getattr__(self, name: str):
        return getattr(self._conn, name)

    def execute(self, sql: str, *params):
        result = self._conn.execute(sql, *params)
        if sql == "COMMIT" and self._other_commit is not None:
            other, self._other_commit = self._other_commit, None
            other()
        return result


def test_a_commit_by_another_process_right_after_ours_is_seen_by_our_next_batch(tmp_path) -> None:
    path = str(tmp_path / "ledger.db")
    asyncio.run(_create(path))
    mine, theirs = _connect(path), _connect(path)
    cache = _engine_sqlite.AccountCache()
    fund = _transfer_request(chain_account("bank", ASSET), user_account(1, ASSET), ASSET, 10, "fund", False, (), ())
    spend = _transfer_request(user_account(1, ASSET), hot_account("bank", ASSET), ASSET, 10, "theirs", False, (), ())
    racing = _CommitThenOther(mine, lambda: _engine_sqlite.apply_batch(theirs, [spend], utc_now()))
    assert isinstance(_engine_sqlite.apply_batch(racing, [fund], utc_now(), cache)[0], Transfer)
    again = _transfer_request(user_account(1, ASSET), hot_account("bank", ASSET), ASSET, 10, "mine", False, (), ())
    (outcome,) = _engine_sqlite.apply_batch(mine, [again], utc_now(), cache)
    assert isinstance(outcome, InsufficientFunds)  # the other process spent the 10 first


async def _create(path: str) -> None:
    await (await open_store(f"sqlite:///{path}")).close()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn
