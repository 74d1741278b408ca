"""Concurrent debits on both backends: one process, and several stores on one database (as processes)."""

from __future__ import annotations

import asyncio

import pytest

from teller.errors import InsufficientFunds
from teller.storage import chain_account, hot_account, open_store, user_account

ASSET = "IRT"
DEBITS = 100
STORES = 4


async def test_100_concurrent_whole_balance_debits_leave_exactly_one(store) -> None:
    await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                amount=1_000, key="fund")
    results = await asyncio.gather(*(
        store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET), asset=ASSET,
                              amount=1_000, key=f"debit-{i}") for i in range(DEBITS)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, InsufficientFunds) for r in results) == DEBITS - 1
    (balance,) = await store.ledger.balances(1)
    assert (balance.available_minor, balance.held_minor) == (0, 0)
    assert not await store.ledger.check_invariants()


async def test_debits_and_holds_through_several_stores_on_one_database(store, store_url) -> None:
    """Each extra store has its own connections and group-commit writer, like another process."""
    await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                amount=1_000, key="fund")
    others = [await open_store(store_url) for _ in range(STORES)]
    try:
        calls = []
        for i in range(DEBITS):
            ledger = others[i % STORES].ledger
            calls.append(ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET),
                                         asset=ASSET, amount=1_000, key=f"debit-{i}", pending=i % 2 == 0))
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        for other in others:
            await other.close()
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, InsufficientFunds) for r in results) == DEBITS - 1
    (balance,) = await store.ledger.balances(1)
    assert balance.available_minor == 0
    assert not await store.ledger.check_invariants()


async def test_the_same_post_or_void_from_two_processes_is_one_and_a_replay(store, store_url) -> None:
    """Two processes settling the same hold with the same key (two instances of one withdrawal's
    step): one applies it, the other gets the replay, never HoldAlreadyResolved."""
    holds = 30
    await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                amount=holds, key="fund")
    for i in range(holds):
        await store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET), asset=ASSET,
                                    amount=1, key=f"hold-{i}", pending=True)
    others = [await open_store(store_url) for _ in range(2)]
    try:
        calls = []
        for i in range(holds):
            settle = "post" if i % 2 == 0 else "void"
            for other in others:
                calls.append(getattr(other.ledger, settle)(pending_key=f"hold-{i}", key=f"{settle}-{i}"))
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        for other in others:
            await other.close()
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r.replayed for r in results) == [False] * holds + [True] * holds
    (balance,) = await store.ledger.balances(1)
    assert (balance.available_minor, balance.held_minor) == (holds // 2, 0)
    assert not await store.ledger.check_invariants()


async def test_a_balance_changed_by_another_process_between_batches_is_seen(store, store_url) -> None:
    """Each store remembers the accounts its last batch wrote; a commit by another process must
    make the next batch read them again, else this debit would overdraw the account."""
    await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                amount=10, key="fund")
    other = await open_store(store_url)
    try:
        await other.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET), asset=ASSET,
                                    amount=10, key="spent-elsewhere")
    finally:
        await other.close()
    with pytest.raises(InsufficientFunds):
        await store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET), asset=ASSET,
                                    amount=10, key="spent-here")
    assert not await store.ledger.check_invariants()


async def test_a_balance_changed_by_a_plain_statement_is_seen_by_the_next_transfer(store) -> None:
    """An operator's correction through the store (not the ledger) on the writer's own connection."""
    await store.ledger.transfer(debit=chain_account("bank", ASSET), credit=user_account(1, ASSET), asset=ASSET,
                                amount=10, key="fund")
    await store.execute("UPDATE accounts SET posted_credits_minor = ? WHERE name = ?", 3, user_account(1, ASSET))
    with pytest.raises(InsufficientFunds):
        await store.ledger.transfer(debit=user_account(1, ASSET), credit=hot_account("bank", ASSET), asset=ASSET,
                                    amount=5, key="more-than-left")
