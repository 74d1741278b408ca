"""LedgerAudit on both backends: it agrees with check_invariants, reports only what the full form
confirms, and never mistakes transfers committing while it reads for a broken ledger."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from teller.storage import chain_account, fees_account, hold_account, user_account
from teller.storage.invariants import check_invariants
from teller.storage.ledger import TransferOrder
from teller.storage.ledger_audit import LedgerAudit
from teller.storage.postgres import split_schema

ASSET = "ethereum:USDT"
CHAIN = chain_account("ethereum", ASSET)
HOLD = hold_account(ASSET)


async def fund(store: Any, user_id: int, amount: int, key: str) -> None:
    await store.ledger.transfer(debit=CHAIN, credit=user_account(user_id, ASSET), asset=ASSET, amount=amount, key=key)


async def busy_ledger(store: Any, users: int = 5) -> None:
    """Credits, a hold posted in part, a hold voided, a hold still open."""
    for u in range(1, users + 1):
        await fund(store, u, 1_000 * u, f"dep-{u}")
    for u, (key, end) in enumerate((("h-post", "post"), ("h-void", "void"), ("h-open", None)), start=1):
        await store.ledger.transfer(debit=user_account(u, ASSET), credit=HOLD, asset=ASSET, amount=300, key=key,
                                    pending=True)
        if end == "post":
            await store.ledger.post(pending_key=key, key=f"{key}:post", amount=200)
        elif end == "void":
            await store.ledger.void(pending_key=key, key=f"{key}:void")


async def test_a_clean_ledger_passes_in_full_and_incrementally(store: Any) -> None:
    await busy_ledger(store)
    audit = LedgerAudit(store)
    first = await audit.run()
    assert (first.mode, first.problems) == ("full", ())
    assert first.transfers == await count(store, "transfers") and first.accounts == await count(store, "accounts")
    await fund(store, 9, 5, "dep-9")
    await store.ledger.post(pending_key="h-open", key="h-open:post")
    second = await audit.run()
    assert (second.mode, second.problems, second.transfers) == ("incremental", (), 2)
    assert await check_invariants(store) == []


async def test_an_account_changed_behind_the_ledgers_back_is_found_and_confirmed(store: Any) -> None:
    await busy_ledger(store)
    audit = LedgerAudit(store)
    assert (await audit.run()).problems == ()
    await store.execute("UPDATE accounts SET posted_credits_minor = ? WHERE name = ?", 10**9, user_account(4, ASSET))
    found = await audit.run()
    assert found.mode == "full"   # the incremental run saw it, the full form confirmed it
    assert any(p.startswith(f"account {user_account(4, ASSET)}: stored") for p in found.problems)
    assert await check_invariants(store)   # the slow form agrees
    again = await audit.run()   # the same difference is not confirmed again on every run
    assert again.mode == "incremental" and again.problems == found.problems
    await fund(store, 4, 1, "dep-4-more")   # the broken account moves on; its difference stays the same
    assert (await audit.run()).mode == "incremental"
    await store.execute("UPDATE accounts SET posted_credits_minor = ? WHERE name = ?", 4_001, user_account(4, ASSET))
    repaired = await audit.run()
    assert (repaired.mode, repaired.problems) == ("full", ())


async def test_an_untouched_account_is_compared_in_rotation(store: Any) -> None:
    for u in range(1, 8):
        await fund(store, u, 10, f"dep-{u}")
    audit = LedgerAudit(store, accounts_per_pass=3)
    assert (await audit.run()).problems == ()
    await store.execute("UPDATE accounts SET pending_debits_minor = ? WHERE name = ?", 1, user_account(6, ASSET))
    results = [await audit.run() for _ in range(4)]   # 8 accounts, 3 a run: all of them within 3 runs
    assert any(user_account(6, ASSET) in " ".join(r.problems) for r in results)


async def test_a_hold_status_edited_in_place_is_found_by_the_full_form(store: Any) -> None:
    await busy_ledger(store)
    await store.execute("UPDATE transfers SET status = 'voided' WHERE key = 'h-open'")
    await store.execute("UPDATE transfers SET status = 'voided' WHERE key = 'h-post'")
    problems = (await LedgerAudit(store).run()).problems
    assert "hold h-open: status voided without a resolution" in problems
    assert "hold h-post: status voided but resolved by post" in problems


async def test_a_new_hold_resolved_later_and_read_incrementally_is_fine(store: Any) -> None:
    await fund(store, 1, 100, "dep-1")
    audit = LedgerAudit(store)
    assert (await audit.run()).problems == ()
    await store.ledger.transfer(debit=user_account(1, ASSET), credit=HOLD, asset=ASSET, amount=60, key="h",
                                pending=True)
    assert (await audit.run()).problems == ()
    await store.ledger.void(pending_key="h", key="h:void")
    await store.ledger.transfer(debit=user_account(1, ASSET), credit=fees_account(ASSET), asset=ASSET, amount=100,
                                key="fee")
    result = await audit.run()
    assert (result.mode, result.problems, result.transfers) == ("incremental", (), 2)


async def test_transfers_committing_while_it_reads_never_look_like_a_broken_ledger(store: Any) -> None:
    """Many submitters (on PostgreSQL several writers: ids commit out of order) while the audit runs
    over and over, incremental and full."""
    for u in range(20):
        await fund(store, u, 10**6, f"seed-{u}")
    audit = LedgerAudit(store, accounts_per_pass=7)
    done = asyncio.Event()

    async def submitter(s: int) -> None:
        for i in range(40):
            orders = [TransferOrder(debit=user_account((s + j) % 20, ASSET), credit=user_account((s + j + 1) % 20, ASSET),
                                    asset=ASSET, amount=1 + j, key=f"mv-{s}-{i}-{j}") for j in range(8)]
            orders.append(TransferOrder(debit=user_account(s % 20, ASSET), credit=HOLD, asset=ASSET, amount=3,
                                        key=f"hold-{s}-{i}", pending=True))
            await store.ledger.transfer_many(orders)
            if i % 2:
                await store.ledger.post(pending_key=f"hold-{s}-{i}", key=f"hold-{s}-{i}:post", amount=2)
            else:
                await store.ledger.void(pending_key=f"hold-{s}-{i}", key=f"hold-{s}-{i}:void")

    async def auditor() -> list[Any]:
        results = []
        while not done.is_set():
            results.append(await audit.run())
            if len(results) % 5 == 0:
                results.append(await audit.full())
            await asyncio.sleep(0)
        return results

    watching = asyncio.ensure_future(auditor())
    await asyncio.gather(*(submitter(s) for s in range(6)))
    done.set()
    results = await watching
    results.append(await audit.run())
    assert len(results) > 5
    assert [r.problems for r in results if r.problems] == []
    assert sum(r.cleared for r in results) == 0
    assert await check_invariants(store) == []


async def test_an_id_committed_after_higher_ones_is_read_when_it_commits(store: Any, store_backend: str,
                                                                      store_url: str) -> None:
    if store_backend != "postgresql":
        pytest.skip("one writer on SQLite: ids commit in order")
    await fund(store, 3, 100, "dep-3")
    audit = LedgerAudit(store)
    assert (await audit.run()).problems == ()
    dsn, schema = split_schema(store_url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema or "public"})
    try:
        late = conn.transaction()
        await late.start()   # takes an id now, commits after a higher one
        await conn.execute("INSERT INTO accounts (name, asset, user_id, posted_credits_minor) VALUES ($1, $2, 4, 7)",
                           user_account(4, ASSET), ASSET)
        await conn.execute("INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, status, fingerprint)"
                           " VALUES ('late', 'single', $1, $2, $3, 7, 'posted', 'f')",
                           user_account(3, ASSET), user_account(4, ASSET), ASSET)
        await conn.execute("UPDATE accounts SET posted_debits_minor = posted_debits_minor + 7 WHERE name = $1",
                           user_account(3, ASSET))
        await fund(store, 2, 5, "dep-2")
        assert (await audit.run()).problems == ()
        await late.commit()
    finally:
        await conn.close()
    result = await audit.run()
    assert (result.mode, result.problems, result.transfers, result.cleared) == ("incremental", (), 1, 0)


async def count(store: Any, table: str) -> int:
    row = await store.fetch_one(f"SELECT count(*) AS n FROM {table}")
    return int(row["n"])
