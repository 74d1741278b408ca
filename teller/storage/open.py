"""``open_store(url)``: pick the backend from the URL, connect, migrate.

- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:``
- ``postgresql://user@host:port/db`` (or ``postgres://``), optionally ``?schema=name``
"""

from __future__ import annotations

from teller.storage.store import Store

__all__ = ["open_store"]

PG_LEDGER_WRITERS = 2  # concurrent group-commit batches on PostgreSQL (row locks keep them correct)


async def open_store(url: str) -> Store:
    if url.startswith("sqlite:///"):
        from teller.storage.sqlite import SqliteStore

        store: Store = await SqliteStore.open(url[len("sqlite:///"):])
        return store
    if url.startswith(("postgresql://", "postgres://")):
        from teller.storage.ledger import Ledger
        from teller.storage.postgres import PostgresStore

        store = await PostgresStore.open(url)
        store.ledger = Ledger(store, writers=PG_LEDGER_WRITERS)
        return store
    raise ValueError("database url must start with sqlite:/// or postgresql://")
