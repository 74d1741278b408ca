"""Migration 7 on both backends: IRT became the toman with the rial as its minor unit (decimals 0 -> 1).

A database written by the old code holds irt.credited events whose ``amount`` is the rial count shown
as tomans. After the migration each reads in tomans (a rial remainder as ".5", never rounded), delivered
or not; the ledger, the statement lines and every other row keep their bytes, and the app then shows the
old credit in tomans."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from teller.actors.outbox_relay import event_from_row
from teller.storage import BANK_IRT, Event, Outbox, Store, open_store, user_account
from teller.storage.notifications import OutboxRows
from teller.storage.store import Write
from tests.fixtures.store import store_before

# (stored amount, what it reads after the migration): multiples of 10 rials and not.
AMOUNTS = [("1500000", "150000"), ("1500005", "150000.5"), ("10", "1"), ("5", "0.5"), ("0", "0"),
           ("123456789012345678901234567890", "12345678901234567890123456789")]
UNTOUCHED = {
    "irt-number": ("irt.credited", '{"user_id": "1", "asset": "IRT", "amount": 1500000, "reference": "N"}'),
    "irt-not-json": ("irt.credited", "not json at all {"),
    "irt-decimal": ("irt.credited", '{"user_id": "1", "asset": "IRT", "amount": "15.5", "reference": "D"}'),
    "deposit": ("deposit.credited", '{"user_id": "1", "asset": "USDT", "chain": "ethereum", "amount": "1500000",'
                                    ' "tx_hash": "0xab"}'),
    "card": ("card.verified", '{"user_id": "1", "card_masked": "603799******1234", "bank": "Melli"}'),
}


@pytest.fixture
async def old_url(store_url: str) -> AsyncIterator[str]:
    """``store_url`` migrated up to 6 and written the way the code before issue 15 wrote it."""
    async with store_before(store_url, 7) as old:
        await _fill_the_old_way(old)
    yield store_url


async def _fill_the_old_way(store: Store) -> None:
    uid = (await store.users.get_or_create(telegram_id=9101)).id
    for i, (rials, _) in enumerate(AMOUNTS):
        ref = f"OLD-{i}"
        # The statement_lines row as the schema before migration 7 has it (no key id, no reason yet).
        now = datetime.now(UTC)
        line = Write("INSERT INTO statement_lines (bank_reference, amount_minor, source_iban, source_card_masked,"
                     " source_card_hash, occurred_at, status, user_id, created_at, updated_at)"
                     " VALUES (?, ?, NULL, '603799******1234', NULL, NULL, 'matched', ?, ?, ?)",
                     (ref, int(rials), uid, now, now), expect_rows=1)
        event = Event("irt.credited", {"user_id": str(uid), "asset": "IRT", "amount": rials, "reference": ref,
                                       "via": "statement"})
        if int(rials):
            await store.ledger.transfer(debit=BANK_IRT, credit=user_account(uid, "IRT"), asset="IRT",
                                        amount=int(rials), key=f"irt:{ref}", writes=[line], outbox=[event])
        else:
            await store.run_atomic([line, Outbox.write(event)])
    for event_type, payload in UNTOUCHED.values():
        await store.execute("INSERT INTO outbox (type, payload, created_at) VALUES (?, ?, ?)", event_type, payload,
                            datetime(2026, 1, 1, tzinfo=UTC))
    # the first two were delivered long ago: they are converted as well, one meaning per stored field
    await store.execute("UPDATE outbox SET delivered_at = created_at WHERE id IN (SELECT id FROM outbox ORDER BY id"
                        " LIMIT 2)")


async def _outbox(store: Store) -> list[dict[str, Any]]:
    return list(await store.fetch_all("SELECT id, type, payload, delivered_at FROM outbox ORDER BY id"))


async def _ledger(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.fetch_all("SELECT key, debit, credit, asset, amount_minor FROM transfers ORDER BY key")
    accounts = await store.fetch_all("SELECT name, posted_debits_minor, posted_credits_minor FROM accounts"
                                     " ORDER BY name")
    lines = await store.fetch_all("SELECT bank_reference, amount_minor FROM statement_lines ORDER BY id")
    return [tuple(r.values()) for r in [*rows, *accounts, *lines]]


async def test_stored_irt_events_read_in_tomans_and_nothing_else_changes(old_url: str) -> None:
    async with store_before(old_url, 7) as before_store:
        outbox_before, ledger_before = await _outbox(before_store), await _ledger(before_store)

    store = await open_store(old_url)
    try:
        outbox_after = await _outbox(store)
        assert [r["id"] for r in outbox_after] == [r["id"] for r in outbox_before]
        converted = [json.loads(r["payload"]) for r in outbox_after[:len(AMOUNTS)]]
        assert [p["amount"] for p in converted] == [tomans for _, tomans in AMOUNTS]
        for before, after in zip(outbox_before[:len(AMOUNTS)], converted):  # only the amount moved
            assert {**json.loads(before["payload"]), "amount": after["amount"]} == after
        untouched = outbox_after[len(AMOUNTS):]
        assert [(r["type"], r["payload"]) for r in untouched] == list(UNTOUCHED.values())
        assert [r["delivered_at"] is not None for r in outbox_after] == [True, True] + [False] * (len(outbox_after) - 2)
        assert await _ledger(store) == ledger_before  # minor units were rials all along
        assert await store.ledger.check_invariants() == []
        # the relay reads a converted row as a valid event
        rows = await OutboxRows(store).undelivered(limit=100)
        events = [event_from_row(r) for r in rows if r.type == "irt.credited" and r.payload
                  and isinstance(r.payload.get("amount"), str) and r.payload["reference"].startswith("OLD-")]
        assert [e.payload["amount"] for e in events] == [tomans for _, tomans in AMOUNTS[2:]]
    finally:
        await store.close()

    again = await open_store(old_url)  # recorded once: a second open converts nothing again
    try:
        assert await _outbox(again) == outbox_after
    finally:
        await again.close()
