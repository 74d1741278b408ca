"""Cards and IBANs bound to verified owners, and lines credited only when all their identifiers agree.

The exact theft of issue 15, the contradiction, races, removal, IBANs, ops assignment, logs: a real
Teller on loopback over the Paystar sandbox, on SQLite and PostgreSQL (``check_invariants`` after each).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teller.payments.sandbox_state import FailureMode, Scope, fake_card_account
from tests.fixtures.http import BOT_TOKEN
from tests.fixtures.initdata import sign_contact
from tests.irt.conftest import OPS, IrtApp, make_card, make_iban, person_for, until

MELLI, MELLAT = "603799", "610433"


async def _add(app: IrtApp, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    return await app.client.post(path, json=body, headers=headers)


async def _settled(app: IrtApp, *refs: str) -> None:
    async def stored() -> bool:
        return all([await app.line_status(ref) is not None for ref in refs])
    await until(stored)


async def _reason(app: IrtApp, ref: str) -> str | None:
    row = await app.store.fetch_one("SELECT reason FROM statement_lines WHERE bank_reference = ?", ref)
    return None if row is None else row["reason"]


async def test_the_exact_theft_fails(irt_app: IrtApp) -> None:
    """Issue 15: a user registers a card whose owner, by the provider's answer, is someone else."""
    victims_card = make_card(MELLI, 5001)
    victim, _, _ = await irt_app.verified_user(5001, cards=(victims_card,))  # holds it, never registered it
    thief, thief_h, _ = await irt_app.verified_user(5002)
    response = await _add(irt_app, thief_h, "/api/v1/cards", {"card_number": victims_card})
    assert response.status == 422 and (await response.json())["error"]["code"] == "card_owner_mismatch"
    assert await irt_app.count("cards") == 0 and await irt_app.events("card.verified") == []
    # The victim pays from their card (and from its account): the thief is never credited.
    account = fake_card_account(victims_card)
    assert account is not None
    irt_app.sandbox.state.append_line(amount_rial=1_500_000, source_card=victims_card, bank_reference="THEFT-1")
    irt_app.sandbox.state.append_line(amount_rial=700_000, source_iban=account.iban, bank_reference="THEFT-2")
    await _settled(irt_app, "THEFT-1", "THEFT-2")
    assert await irt_app.irt_balance(thief) == 0 and await irt_app.irt_balance(victim) == 0
    assert await _reason(irt_app, "THEFT-1") == "unknown_card" and await _reason(irt_app, "THEFT-2") == "unknown_iban"


async def test_a_line_whose_card_and_iban_disagree_goes_to_suspense(irt_app: IrtApp) -> None:
    alice_card, bob_iban = make_card(MELLI, 5011), make_iban(5012)
    alice, alice_h, _ = await irt_app.verified_user(5011, cards=(alice_card,))
    bob, bob_h, _ = await irt_app.verified_user(5012, ibans=(bob_iban,))
    assert (await _add(irt_app, alice_h, "/api/v1/cards", {"card_number": alice_card})).status == 201
    assert (await _add(irt_app, bob_h, "/api/v1/ibans", {"iban": bob_iban})).status == 201
    masked = alice_card[:6] + "******" + alice_card[-4:]
    state = irt_app.sandbox.state
    state.append_line(amount_rial=10, source_card=masked, source_iban=bob_iban, bank_reference="MIX-1")
    state.append_line(amount_rial=20, source_card=alice_card, source_iban=bob_iban, bank_reference="MIX-2")
    state.append_line(amount_rial=30, source_card=alice_card, source_iban=make_iban(5999), bank_reference="MIX-3")
    state.append_line(amount_rial=40, source_iban=bob_iban, bank_reference="IBAN-OK")  # the control: Bob's own
    await _settled(irt_app, "MIX-1", "MIX-2", "MIX-3", "IBAN-OK")
    for ref, reason in (("MIX-1", "identifiers_disagree"), ("MIX-2", "identifiers_disagree"),
                        ("MIX-3", "unknown_iban")):
        assert await irt_app.line_status(ref) == "unmatched" and await _reason(irt_app, ref) == reason
    assert await irt_app.irt_balance(alice) == 0 and await irt_app.irt_balance(bob) == 40
    # Ops cannot assign MIX-2 to either: the card names Alice, the IBAN names Bob.
    lines = {x["bank_reference"]: x for x in (await (await irt_app.client.get(
        "/ops/irt/unmatched", headers=OPS)).json())["lines"]}
    assert lines["MIX-2"]["reason"] == "identifiers_disagree"
    for uid in (alice, bob):
        refused = await irt_app.client.post(f"/ops/irt/unmatched/{lines['MIX-2']['id']}/assign",
                                            json={"user_id": uid, "operator": "ops-sara"}, headers=OPS)
        assert refused.status == 409 and (await refused.json())["error"]["code"] == "assignment_contradicts_line"
    # MIX-3: its card is Alice's and its IBAN nobody's: Alice may be credited by an operator, Bob may not.
    to_bob = await irt_app.client.post(f"/ops/irt/unmatched/{lines['MIX-3']['id']}/assign",
                                       json={"user_id": bob, "operator": "ops-sara"}, headers=OPS)
    assert to_bob.status == 409
    to_alice = await irt_app.client.post(f"/ops/irt/unmatched/{lines['MIX-3']['id']}/assign",
                                         json={"user_id": alice, "operator": "ops-sara"}, headers=OPS)
    assert to_alice.status == 200 and (await to_alice.json())["assigned_by"] == "ops-sara"
    assert await irt_app.irt_balance(alice) == 30 and await irt_app.irt_balance(bob) == 40


async def test_two_users_racing_for_one_card_end_with_one_owner(irt_app: IrtApp) -> None:
    card = make_card(MELLAT, 5021)
    # The provider says both hold it (a shared card the bank lists under both): only the database can decide.
    users = [await irt_app.verified_user(5021 + i, cards=(card,)) for i in range(4)]
    responses = await asyncio.gather(*[_add(irt_app, h, "/api/v1/cards", {"card_number": card}) for _, h, _ in users])
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409, 409, 409], statuses
    assert {(await r.json())["error"]["code"] for r in responses if r.status == 409} == {"card_exists"}
    assert await irt_app.count("cards") == 1 and len(await irt_app.events("card.verified")) == 1


async def test_a_card_is_freed_only_by_its_owner_and_the_removal_is_recorded(irt_app: IrtApp) -> None:
    card = make_card(MELLI, 5031)
    alice, alice_h, _ = await irt_app.verified_user(5031, cards=(card,))
    bob, bob_h, _ = await irt_app.verified_user(5032, cards=(card,))
    added = await _add(irt_app, alice_h, "/api/v1/cards", {"card_number": card})
    card_id = (await added.json())["id"]
    blocked = await _add(irt_app, bob_h, "/api/v1/cards", {"card_number": card})
    assert blocked.status == 409 and (await blocked.json())["error"]["code"] == "card_exists"
    assert "alice" not in (await blocked.text()).lower() and str(alice) not in (await blocked.json())["error"]["message"]
    c = irt_app.client
    for path in (f"/api/v1/cards/{card_id}", "/api/v1/cards/0", "/api/v1/cards/abc", "/api/v1/cards/-1",
                 "/api/v1/cards/" + "9" * 40, "/api/v1/cards/99999999"):
        response = await c.delete(path, headers=bob_h)  # someone else's id, or none at all
        assert response.status == 404 and (await response.json())["error"]["code"] == "not_found", path
    assert await irt_app.count("cards") == 1 and await irt_app.count("irt_removals") == 0
    assert (await c.delete(f"/api/v1/cards/{card_id}", headers=alice_h)).status == 204
    assert (await c.delete(f"/api/v1/cards/{card_id}", headers=alice_h)).status == 404
    removal = await irt_app.store.fetch_one("SELECT kind, user_id, shown, reason, removed_by, removed_at, key_id"
                                            " FROM irt_removals")
    assert removal is not None and removal["removed_at"] is not None
    assert (removal["kind"], removal["user_id"], removal["shown"], removal["reason"], removal["removed_by"],
            removal["key_id"]) == ("card", alice, card[:6] + "******" + card[-4:], "removed_by_user", alice, "k1")
    assert (await _add(irt_app, bob_h, "/api/v1/cards", {"card_number": card})).status == 201
    assert (await (await c.get("/api/v1/cards", headers=alice_h)).json())["cards"] == []


async def test_ibans_bound_to_their_owner(irt_app: IrtApp) -> None:
    mine, theirs = make_iban(5041, bank_code="017"), make_iban(5042)
    uid, headers, person = await irt_app.verified_user(5041, ibans=(mine,))
    other, other_h, _ = await irt_app.verified_user(5042, ibans=(theirs,))
    c = irt_app.client
    spaced = "ir" + " ".join(mine[2:][i:i + 4] for i in range(0, 24, 4))
    persian = spaced.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    added = await _add(irt_app, headers, "/api/v1/ibans", {"iban": persian})
    assert added.status == 201, await added.text()
    body = await added.json()
    assert body["iban"] == mine and body["owner_name"] == person.name and body["bank"] == "Melli"
    assert body["status"] == "verified"
    again = await _add(irt_app, headers, "/api/v1/ibans", {"iban": mine})
    assert again.status == 200 and (await again.json())["id"] == body["id"]
    stolen = await _add(irt_app, headers, "/api/v1/ibans", {"iban": theirs})
    assert stolen.status == 422 and (await stolen.json())["error"]["code"] == "iban_owner_mismatch"
    taken = await _add(irt_app, other_h, "/api/v1/ibans", {"iban": mine})
    assert taken.status == 409 and (await taken.json())["error"]["code"] == "iban_exists"
    for bad in ("", "IR00" + mine[4:], mine + "0", mine[:-1], "DE89370400440532013000", 5, None, "I" * 500):
        response = await _add(irt_app, headers, "/api/v1/ibans", {} if bad is None else {"iban": bad})
        assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_iban", bad
    assert [x["iban"] for x in (await (await c.get("/api/v1/ibans", headers=headers)).json())["ibans"]] == [mine]
    irt_app.sandbox.state.append_line(amount_rial=5_000, source_iban=mine, bank_reference="IB-1")
    await _settled(irt_app, "IB-1")
    assert await irt_app.irt_balance(uid) == 5_000 and await irt_app.irt_balance(other) == 0
    assert (await c.delete(f"/api/v1/ibans/{body['id']}", headers=other_h)).status == 404
    assert (await c.delete(f"/api/v1/ibans/{body['id']}", headers=headers)).status == 204
    assert await irt_app.count("ibans") == 0 and await irt_app.count("irt_removals") == 1


@pytest.mark.parametrize(("mode", "scope", "status", "code"), [
    (FailureMode.ERROR, Scope.MATCHING, 502, "provider_unavailable"),
    (FailureMode.TIMEOUT, Scope.MATCHING, 502, "provider_unavailable"),
    (FailureMode.TIMEOUT, Scope.INQUIRY, 502, "provider_unavailable"),
    (FailureMode.LIMIT, Scope.MATCHING, 429, "provider_limit"),
    (FailureMode.MISMATCH, Scope.MATCHING, 422, "card_owner_mismatch"),
])
async def test_the_provider_failing_on_a_card_stores_nothing(irt_app: IrtApp, mode: str, scope: str, status: int,
                                                             code: str) -> None:
    card = make_card(MELLI, 5051)
    _, headers, _ = await irt_app.verified_user(5051, cards=(card,))
    irt_app.sandbox.state.fail(mode, count=10, scope=scope)
    response = await _add(irt_app, headers, "/api/v1/cards", {"card_number": card})
    assert response.status == status and (await response.json())["error"]["code"] == code
    assert await irt_app.count("cards") == 0 and await irt_app.events("card.verified") == []
    irt_app.sandbox.state.clear_failures()
    assert (await _add(irt_app, headers, "/api/v1/cards", {"card_number": card})).status == 201


async def test_no_national_code_mobile_or_card_in_any_log_line(irt_app: IrtApp, log_stream: Any) -> None:
    card, iban = make_card(MELLI, 5061), make_iban(5061)
    uid, headers, person = await irt_app.verified_user(5061, cards=(card,), ibans=(iban,))
    await _add(irt_app, headers, "/api/v1/cards", {"card_number": card})
    await _add(irt_app, headers, "/api/v1/cards", {"card_number": make_card(MELLI, 5062)})  # not theirs: refused
    irt_app.sandbox.state.fail(FailureMode.ERROR, count=10, scope=Scope.MATCHING)
    await _add(irt_app, headers, "/api/v1/ibans", {"iban": iban})
    irt_app.sandbox.state.clear_failures()
    irt_app.sandbox.state.append_line(amount_rial=9, source_card=card, bank_reference="LOGS-1")
    irt_app.sandbox.state.append_line(amount_rial=9, source_card=make_card(MELLI, 5063), bank_reference="LOGS-2")
    await _settled(irt_app, "LOGS-1", "LOGS-2")
    text = log_stream.getvalue()
    assert "irt.identity_verified" in text and "irt.card_verified" in text and "irt.line_to_suspense" in text
    for secret in (person.national_code, person.mobile, person.mobile[1:], card, make_card(MELLI, 5062),
                   make_card(MELLI, 5063)):
        assert secret not in text, secret


async def test_a_crash_between_the_providers_answer_and_the_write_leaves_nothing(irt_app: IrtApp,
                                                                                 monkeypatch: Any) -> None:
    """kill -9 after the provider said yes and before the commit: nothing was written, so the user asks again
    and the provider is asked again (a paid inquiry repeated, nothing else). Simulated in-process: the write
    dies (a bug-like exception, a 500, as the process would vanish) once per step."""
    card = (make_card(MELLI, 5071),)
    person_uid, headers = await irt_app.user(5071)
    person = person_for(5071, cards=card)
    irt_app.sandbox.state.add_person(person)
    real = irt_app.store.run_atomic
    dying = {"UPDATE identities SET status = 'verified'", "INSERT INTO cards"}

    async def run_atomic(writes: Any) -> Any:
        hit = next((w for w in dying if any(x.sql.startswith(w) for x in writes)), None)
        if hit is not None:
            dying.discard(hit)
            raise RuntimeError("simulated kill -9 before the commit")
        return await real(writes)

    monkeypatch.setattr(irt_app.store, "run_atomic", run_atomic)
    c = irt_app.client
    contact = sign_contact(BOT_TOKEN, user_id=5071, phone_number="98" + person.mobile[1:])
    assert (await c.post("/api/v1/identity/contact", json={"contact": contact}, headers=headers)).status == 200
    steps = (("/api/v1/identity/national-code", {"national_code": person.national_code}),
             ("/api/v1/cards", {"card_number": card[0]}))
    for path, body in steps:
        asked = irt_app.sandbox.state.requests[Scope.MATCHING]
        crashed = await c.post(path, json=body, headers=headers)
        assert crashed.status == 500
        assert await irt_app.count("cards") == 0 and await irt_app.events("card.verified") == []
        again = await c.post(path, json=body, headers=headers)
        assert again.status in (200, 201), await again.text()
        assert irt_app.sandbox.state.requests[Scope.MATCHING] == asked + 2  # asked again, nothing else
    assert await irt_app.count("cards") == 1 and len(await irt_app.events("card.verified")) == 1
    identity = await irt_app.store.fetch_one("SELECT status FROM identities WHERE user_id = ?", person_uid)
    assert identity == {"status": "verified"}
