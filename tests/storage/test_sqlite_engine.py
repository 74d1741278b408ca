"""The SQLite ledger engine's own memory: what it keeps between batches never outlives a failure."""

from __future__ import annotations

import pytest

from teller.storage import StorageError, chain_account, hot_account, open_store, user_account
from teller.storage import _engine_sqlite

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
