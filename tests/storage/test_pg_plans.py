"""PostgreSQL only: the ledger's batch function keeps using the key index as the ledger grows.

A long-lived pool connection runs its first batches on an empty ledger. PL/pgSQL caches a generic
plan after a few calls; planned on an empty table it scanned every transfer to find a batch's
keys, so each batch got slower as the ledger grew (measured: 12k -> 1k transfers/s over 24k rows).
"""

from __future__ import annotations

import asyncpg
import pytest

from teller.storage import open_store
from teller.storage._engine_pg import apply_batch
from teller.storage.ledger import _transfer_request

from ..fixtures.store import PG_DSN


def _batch(tag: str, size: int) -> list:
    return [_transfer_request("bank:irt", f"user:{i % 50}:IRT", "IRT", 5, f"{tag}-{i}", False, (), ())
            for i in range(size)]


@pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)
async def test_a_batch_finds_its_keys_by_index_after_the_ledger_grew(store_url: str) -> None:
    store = await open_store(store_url)  # creates the schema and the functions
    schema = store_url.rsplit("schema=", 1)[1]
    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    plans: list[str] = []
    try:
        for i in range(8):  # past the five custom plans after which PL/pgSQL may settle on a generic one
            await apply_batch(conn, _batch(f"early{i}", 4), str)
        for i in range(20):  # before autovacuum analyzes the table (its ANALYZE would drop the cached plan)
            await apply_batch(conn, _batch(f"grow{i}", 1000), str)
        await conn.execute("LOAD 'auto_explain'")
        await conn.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;"
                           "SET auto_explain.log_level = notice; SET client_min_messages = notice")
        conn.add_log_listener(lambda _conn, message: plans.append(str(message.message)))
        outcomes = await apply_batch(conn, _batch("late", 32), str)
    finally:
        await conn.close()
        await store.close()
    assert all(not isinstance(o, Exception) for o in outcomes)
    nested = [plan for plan in plans if "teller_apply" not in plan.split("\n", 2)[1]]
    assert nested, "auto_explain reported no statements"
    assert not [plan for plan in nested if "Seq Scan on transfers" in plan], "\n\n".join(nested)
