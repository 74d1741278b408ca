"""The card-hash key: rotated without losing a card, and migration 8 over cards hashed the old way.

Real Tellers over loopback on the sandbox, both backends: a card verified under key k1 is still
found after the secret rotates to k2 (k1 configured as previous), re-keyed on its first match, and
still refused to another user; a database from before issue 15 keeps its cards (pending until their
owner re-adds them) and finds them again through the old, JWT-derived key configured as ``legacy``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest
from teller.config import PaystarSettings
from teller.payments.card_keys import legacy_card_hash_secret
from teller.payments.cards import card_hash, mask_card
from teller.payments.sandbox import SandboxHandle
from teller.storage import open_store
from teller.storage.schema import MIGRATIONS
from tests.irt.conftest import OPS, IrtApp, make_card, running_irt_app, until

MELLI = "603799"
K1, K2 = "1" * 32, "2" * 32
JWT_SECRET = "j" * 48  # tests/fixtures/http.py's auth.jwt_secret: what the old code derived the card key from


def _running(store: Any, sandbox: SandboxHandle, paystar_settings: PaystarSettings, overrides: dict[str, Any],
             **irt: Any) -> Any:
    return running_irt_app(store, sandbox, paystar_settings, overrides, **irt)


async def _line(app: IrtApp, ref: str, **line: Any) -> str | None:
    app.sandbox.state.append_line(amount_rial=100, bank_reference=ref, **line)

    async def stored() -> str | None:
        return await app.line_status(ref)
    return str(await until(stored))


async def test_rotating_the_card_hash_secret_keeps_every_card_matched(
        store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
        irt_overrides: dict[str, Any]) -> None:
    cards = [make_card(MELLI, 6001 + i) for i in range(3)]
    run = dict(store=store, sandbox=paystar_sandbox, paystar_settings=paystar_settings, overrides=irt_overrides)
    async with _running(**run, card_hash_secret=K1, card_hash_key_id="k1") as app:
        uid, headers, _ = await app.verified_user(6001, cards=tuple(cards))
        for number in cards:
            assert (await app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)).status == 201
        assert await _line(app, "ROT-0", source_card=cards[0]) == "matched"
        _, other_h, _ = await app.verified_user(6002, cards=tuple(cards))  # shares them, by the bank's answer
    async with _running(**run, card_hash_secret=K2, card_hash_key_id="k2", card_hash_previous={"k1": K1}) as app:
        for i, number in enumerate(cards):  # every card, found under its old key
            assert await _line(app, f"ROT-{i + 1}", source_card=number) == "matched"
        keyed = {r["key_id"] for r in await store.fetch_all("SELECT key_id FROM cards")}
        assert keyed == {"k2"}  # each re-keyed on its match
        assert await _line(app, "ROT-4", source_card=cards[0]) == "matched"
        taken = await app.client.post("/api/v1/cards", json={"card_number": cards[1]}, headers=other_h)
        assert taken.status == 409 and (await taken.json())["error"]["code"] == "card_exists"
        assert await app.irt_balance(uid) == 500
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["irt"]["cards_under_unknown_keys"] == {} and status["irt"]["card_hash_key_id"] == "k2"
    async with _running(**run, card_hash_secret=K1 + "x", card_hash_key_id="k3") as app:  # k2 forgotten: ops see it
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["irt"]["cards_under_unknown_keys"] == {"k2": 3}


@pytest.fixture
async def v5_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A database migrated to version 5 holding a card registered the old way (hash under the JWT-derived key,
    no owner check, no key id), and a line credited from it; then opened with every migration."""
    number = make_card(MELLI, 6101)
    with monkeypatch.context() as patch:
        old_migrations = tuple(m for m in MIGRATIONS if m.version <= 5)
        patch.setattr("teller.storage.sqlite.MIGRATIONS", old_migrations)
        patch.setattr("teller.storage.postgres.MIGRATIONS", old_migrations)
        old = await open_store(store_url)
        try:
            user = await old.users.get_or_create(telegram_id=6101)
            # The key main's teller/flows/irt.py derived when irt.card_hash_secret was unset, written out here
            # independently of legacy_card_hash_secret, which must reproduce it.
            derived = hmac.new(JWT_SECRET.encode(), b"teller/irt/card-hash/v1", hashlib.sha256).digest()
            await old.execute("INSERT INTO cards (user_id, card_hash, card_masked, iban, status) VALUES (?, ?, ?, ?,"
                              " 'verified')", user.id, card_hash(number, secret=derived), mask_card(number), None)
            await old.execute("INSERT INTO statement_lines (bank_reference, amount_minor, source_card_masked,"
                              " source_card_hash, status, user_id) VALUES ('OLD-1', ?, ?, ?, 'matched', ?)",
                              100, mask_card(number), card_hash(number, secret=derived), user.id)
        finally:
            await old.close()
    store = await open_store(store_url)
    try:
        yield store, number
    finally:
        await store.close()


async def test_migration_7_keeps_old_cards_pending_until_their_owner_re_adds_them(
        v5_store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
        irt_overrides: dict[str, Any]) -> None:
    store, number = v5_store
    card = await store.fetch_one("SELECT id, status, key_id FROM cards")
    assert (card["status"], card["key_id"]) == ("pending", "legacy")  # never owner-checked: never matched
    old_line = await store.fetch_one("SELECT source_card_key_id FROM statement_lines")
    assert old_line["source_card_key_id"] == "legacy"
    async with _running(store=store, sandbox=paystar_sandbox, paystar_settings=paystar_settings,
                        overrides=irt_overrides, card_hash_secret=K1, card_hash_key_id="k1",
                        card_hash_previous={"legacy": legacy_card_hash_secret(JWT_SECRET)}) as app:
        assert await _line(app, "NEW-1", source_card=number) == "unmatched"  # pending: suspense, not its user
        uid, headers, _ = await app.verified_user(6101, cards=(number,))
        cards = (await (await app.client.get("/api/v1/cards", headers=headers)).json())["cards"]
        assert [c["status"] for c in cards] == ["pending"]
        readded = await app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
        assert readded.status == 201, await readded.text()
        assert (await readded.json())["id"] == str(card["id"])  # the old row, found through the legacy key
        row = await store.fetch_one("SELECT status, key_id FROM cards")
        assert (row["status"], row["key_id"]) == ("verified", "k1")
        assert await _line(app, "NEW-2", source_card=number) == "matched"
        assert await app.irt_balance(uid) == 100


async def test_an_old_card_of_someone_else_yields_to_its_verified_owner(
        v5_store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
        irt_overrides: dict[str, Any]) -> None:
    """The theft from before issue 15 (a card registered by whoever typed it) does not block its real owner."""
    store, number = v5_store
    async with _running(store=store, sandbox=paystar_sandbox, paystar_settings=paystar_settings,
                        overrides=irt_overrides, card_hash_secret=K1,
                        card_hash_previous={"legacy": legacy_card_hash_secret(JWT_SECRET)}) as app:
        owner, headers, _ = await app.verified_user(6102, cards=(number,))
        added = await app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
        assert added.status == 201, await added.text()
        removal = await store.fetch_one("SELECT kind, reason, removed_by FROM irt_removals")
        assert removal == {"kind": "card", "reason": "superseded_by_verified_owner", "removed_by": None}
        rows = await store.fetch_all("SELECT user_id, status FROM cards")
        assert [(int(r["user_id"]), r["status"]) for r in rows] == [(owner, "verified")]
