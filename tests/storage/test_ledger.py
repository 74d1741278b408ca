"""The ledger's contract, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from teller.errors import HoldAlreadyResolved, IdempotencyConflict, InsufficientFunds, InvalidAmount, NotFound
from teller.storage import (
    Event,
    UniqueViolation,
    Write,
    chain_account,
    fees_account,
    hold_account,
    user_account,
)

ASSET = "ethereum:USDT"
CHAIN = chain_account("ethereum", ASSET)


async def fund(store, user_id: int, amount: int, key: str) -> None:
    await store.ledger.transfer(debit=CHAIN, credit=user_account(user_id, ASSET), asset=ASSET, amount=amount, key=key)


async def available(store, user_id: int) -> tuple[int, int]:
    for b in await store.ledger.balances(user_id):
        if b.asset == ASSET:
            return b.available_minor, b.held_minor
    return 0, 0


@pytest.mark.parametrize("bad", [1.0, 10.5, True, "10", None])
async def test_a_non_int_amount_is_a_type_error(store, bad) -> None:
    with pytest.raises(TypeError):
        await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=bad, key="k")
    if bad is not None:  # None means "post the whole hold"
        with pytest.raises(TypeError):
            await store.ledger.post(pending_key="h", key="p", amount=bad)
    assert not await store.fetch_all("SELECT * FROM transfers")


@pytest.mark.parametrize("bad", [0, -1])
async def test_zero_or_negative_amount_is_invalid(store, bad) -> None:
    with pytest.raises(InvalidAmount):
        await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=bad, key="k")


async def test_bad_account_names_and_assets_are_refused(store) -> None:
    for debit, credit in (("nobody:1", CHAIN), (CHAIN, user_account(1, "ethereum:ETH")), (CHAIN, CHAIN),
                          ("user:x:" + ASSET, CHAIN)):
        with pytest.raises(ValueError):
            await store.ledger.transfer(debit=debit, credit=credit, asset=ASSET, amount=1, key="k")


async def test_a_user_never_goes_below_zero_but_a_system_account_may(store) -> None:
    await fund(store, 1, 100, "dep-1")  # the chain account goes to -100: fine
    assert await available(store, 1) == (100, 0)
    with pytest.raises(InsufficientFunds):
        await store.ledger.transfer(debit=user_account(1, ASSET), credit=fees_account(ASSET), asset=ASSET,
                                    amount=101, key="fee-1")
    t = await store.ledger.transfer(debit=user_account(1, ASSET), credit=fees_account(ASSET), asset=ASSET,
                                    amount=100, key="fee-2")
    assert t.amount_minor == 100 and not t.replayed
    assert await available(store, 1) == (0, 0)
    assert not await store.ledger.check_invariants()


async def test_same_key_same_content_replays_and_other_content_conflicts(store) -> None:
    first = await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=5, key="d",
                                        outbox=[Event("deposit.credited", {"k": "d"})])
    again = await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=5, key="d",
                                        outbox=[Event("deposit.credited", {"k": "d"})])
    assert again.replayed and (again.id, again.created_at, again.amount_minor) == (first.id, first.created_at, 5)
    with pytest.raises(IdempotencyConflict):
        await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=6, key="d")
    assert await available(store, 1) == (5, 0)
    assert len(await store.outbox.undelivered()) == 1  # the replay wrote no second event


async def test_idempotency_is_a_unique_constraint_not_only_a_read(store) -> None:
    await fund(store, 1, 5, "d")
    with pytest.raises(UniqueViolation):
        await store.execute("INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, status, fingerprint)"
                            " VALUES (?, 'single', ?, ?, ?, ?, 'posted', 'x')", "d", CHAIN, user_account(1, ASSET), ASSET, 5)


async def test_hold_then_partial_post_returns_the_rest(store) -> None:
    await fund(store, 1, 100, "dep")
    hold = await store.ledger.transfer(debit=user_account(1, ASSET), credit=hold_account(ASSET), asset=ASSET,
                                       amount=60, key="w1", pending=True)
    assert hold.kind == "pending"
    assert await available(store, 1) == (40, 60)
    with pytest.raises(InsufficientFunds):  # held funds are not available
        await store.ledger.transfer(debit=user_account(1, ASSET), credit=fees_account(ASSET), asset=ASSET,
                                    amount=41, key="x")
    with pytest.raises(InvalidAmount):
        await store.ledger.post(pending_key="w1", key="w1-post", amount=61)
    posted = await store.ledger.post(pending_key="w1", key="w1-post", amount=45)
    assert (posted.kind, posted.amount_minor, posted.debit) == ("post", 45, user_account(1, ASSET))
    assert await available(store, 1) == (55, 0)
    assert (await store.ledger.post(pending_key="w1", key="w1-post", amount=45)).replayed
    with pytest.raises(HoldAlreadyResolved):
        await store.ledger.void(pending_key="w1", key="w1-void")
    with pytest.raises(HoldAlreadyResolved):
        await store.ledger.post(pending_key="w1", key="w1-post-2")
    assert await available(store, 1) == (55, 0)
    assert not await store.ledger.check_invariants()


async def test_void_gives_everything_back_once(store) -> None:
    await fund(store, 1, 100, "dep")
    await store.ledger.transfer(debit=user_account(1, ASSET), credit=hold_account(ASSET), asset=ASSET,
                                amount=100, key="w", pending=True)
    assert await available(store, 1) == (0, 100)
    await store.ledger.void(pending_key="w", key="w-void")
    assert await available(store, 1) == (100, 0)
    assert (await store.ledger.void(pending_key="w", key="w-void")).replayed
    with pytest.raises(NotFound):
        await store.ledger.void(pending_key="no-such-hold", key="v2")
    with pytest.raises(NotFound):  # a posted transfer is not a hold
        await store.ledger.post(pending_key="dep", key="v3")
    assert not await store.ledger.check_invariants()


async def test_concurrent_resolutions_of_one_hold_settle_once(store) -> None:
    await fund(store, 1, 100, "dep")
    await store.ledger.transfer(debit=user_account(1, ASSET), credit=hold_account(ASSET), asset=ASSET,
                                amount=100, key="w", pending=True)
    results = await asyncio.gather(
        *(store.ledger.post(pending_key="w", key=f"post-{i}") for i in range(10)),
        *(store.ledger.void(pending_key="w", key=f"void-{i}") for i in range(10)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, HoldAlreadyResolved) for r in results if isinstance(r, Exception))
    assert not await store.ledger.check_invariants()


async def test_amounts_beyond_64_bits_are_exact(store) -> None:
    wei = 10**30 + 1
    await store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=wei, key="big")
    await store.ledger.transfer(debit=user_account(1, ASSET), credit=hold_account(ASSET), asset=ASSET,
                                amount=wei - 1, key="h", pending=True)
    assert await available(store, 1) == (1, wei - 1)
    assert not await store.ledger.check_invariants()


async def test_outbox_and_writes_commit_with_the_transfer_and_only_once(store) -> None:
    user = await store.users.get_or_create(telegram_id=9)
    await store.execute(
        "INSERT INTO deposits (user_id, chain, asset, address, tx_hash, log_index, amount_minor, block_number,"
        " block_hash) VALUES (?, 'ethereum', ?, '0xa', '0xt', 0, ?, 1, '0xb')", user.id, ASSET, 7)
    mark = Write("UPDATE deposits SET status = 'credited', credited_at = ? WHERE tx_hash = ? AND status = 'pending'",
                 (None, "0xt"), expect_rows=1)
    mark = Write(mark.sql, (await _now(), "0xt"), expect_rows=1)
    args = dict(debit=CHAIN, credit=user_account(user.id, ASSET), asset=ASSET, amount=7, key="ethereum:0xt:0",
                outbox=[Event("deposit.credited", {"tx": "0xt"})], writes=[mark])
    await store.ledger.transfer(**args)
    replay = await store.ledger.transfer(**args)  # the write would now touch 0 rows: it must not run
    assert replay.replayed
    row = await store.fetch_one("SELECT status, credited_at FROM deposits WHERE tx_hash = '0xt'")
    assert row["status"] == "credited" and row["credited_at"] is not None
    assert [e.type for e in await store.outbox.undelivered()] == ["deposit.credited"]


async def _now():
    from teller.storage import utc_now

    return utc_now()


async def test_a_failing_write_fails_only_its_own_transfer_in_a_batch(store) -> None:
    await store.execute("INSERT INTO sync_cursors (name, cursor) VALUES ('taken', '1')")
    bad = Write("INSERT INTO sync_cursors (name, cursor) VALUES ('taken', '2')")
    good = [store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=1, key=f"g{i}",
                                  outbox=[Event("e", {"i": i})]) for i in range(20)]
    failing = store.ledger.transfer(debit=CHAIN, credit=user_account(1, ASSET), asset=ASSET, amount=1000, key="bad",
                                    outbox=[Event("e", {"i": "bad"})], writes=[bad])
    results = await asyncio.gather(*good[:10], failing, *good[10:], return_exceptions=True)
    assert isinstance(results[10], UniqueViolation)
    assert sum(not isinstance(r, Exception) for r in results) == 20
    assert await available(store, 1) == (20, 0)
    assert await store.ledger.get("bad") is None
    assert len(await store.outbox.undelivered()) == 20
    assert not await store.ledger.check_invariants()


async def test_history_is_newest_first_with_a_cursor(store) -> None:
    for i in range(7):
        await fund(store, 1, i + 1, f"dep-{i}")
    await fund(store, 2, 50, "other-user")
    seen, cursor = [], None
    while True:
        page = await store.ledger.history(1, limit=3, cursor=cursor)
        seen.extend(page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [e.key for e in seen] == [f"dep-{i}" for i in reversed(range(7))]
    assert all(e.direction == "in" and e.counterparty == CHAIN for e in seen)
    big = await store.ledger.history(1, limit=10_000)
    assert len(big.entries) == 7 and big.next_cursor is None


async def test_check_invariants_reports_a_tampered_balance(store) -> None:
    await fund(store, 1, 10, "dep")
    assert await store.ledger.check_invariants() == []
    await store.execute("UPDATE accounts SET posted_credits_minor = ? WHERE name = ?", 11, user_account(1, ASSET))
    problems = await store.ledger.check_invariants()
    assert any("user:1:" in p for p in problems) and any("sum to" in p for p in problems)
