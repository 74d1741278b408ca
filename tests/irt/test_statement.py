"""Statement lines end to end: matched once, replays and crashes credit nothing twice, suspense and assign."""

from __future__ import annotations

from typing import Any

from teller.payments.sandbox_state import FailureMode, Scope
from teller.storage import SUSPENSE_IRT
from tests.irt.conftest import OPS, IrtApp, make_card, until

MELLI = "603799"


async def _register(app: IrtApp, headers: dict[str, str], number: str) -> dict[str, Any]:
    response = await app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
    assert response.status == 201, await response.text()
    return dict(await response.json())


async def _stored(app: IrtApp, *refs: str) -> None:
    async def all_stored() -> bool:
        return all([await app.line_status(ref) is not None for ref in refs])
    await until(all_stored)


async def test_a_verified_cards_deposit_is_credited_once(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 1)
    uid, headers, _ = await irt_app.verified_user(2001, cards=(number,))
    await _register(irt_app, headers, number)
    state = irt_app.sandbox.state
    state.append_line(amount_rial=1_500_000, source_card=number, bank_reference="REF-1")
    await _stored(irt_app, "REF-1")
    assert await irt_app.irt_balance(uid) == 1_500_000
    state.duplicate_line("REF-1")  # the bank serves it again
    state.append_line(amount_rial=10, source_card=make_card(MELLI, 99), bank_reference="REF-2")
    await _stored(irt_app, "REF-2")  # read after the duplicate: the duplicate has been handled
    assert await irt_app.irt_balance(uid) == 1_500_000
    deposits = (await (await irt_app.client.get("/api/v1/irt/deposits", headers=headers)).json())["deposits"]
    assert [(d["amount"], d["bank_reference"], d["status"]) for d in deposits] == [("150000", "REF-1", "credited")]
    assert deposits[0]["source_card_masked"] == number[:6] + "******" + number[-4:]
    assert await irt_app.events("irt.credited") == [
        {"user_id": str(uid), "asset": "IRT", "amount": "150000", "reference": "REF-1", "via": "statement"}]


async def test_a_line_from_the_cards_iban_or_its_masked_number_is_matched(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 2)
    uid, headers, _ = await irt_app.verified_user(2002, cards=(number,))
    card = await _register(irt_app, headers, number)
    state = irt_app.sandbox.state
    state.append_line(amount_rial=100, source_iban=card["iban"], bank_reference="IBAN-1")
    state.append_line(amount_rial=200, source_card=card["card_masked"], bank_reference="MASK-1")
    await _stored(irt_app, "IBAN-1", "MASK-1")
    assert await irt_app.line_status("IBAN-1") == "matched" and await irt_app.line_status("MASK-1") == "matched"
    assert await irt_app.irt_balance(uid) == 300


async def test_an_ambiguous_masked_card_goes_to_suspense(irt_app: IrtApp) -> None:
    # Two users' cards with the same BIN and last four: the mask alone cannot say whose.
    a, b = make_card(MELLI, 3), None
    for serial in range(4, 100_000):
        candidate = make_card(MELLI, serial * 10_000 + 3)
        if candidate[-4:] == a[-4:] and candidate != a:
            b = candidate
            break
    assert b is not None
    alice, alice_h, _ = await irt_app.verified_user(2003, cards=(a,))
    bob, bob_h, _ = await irt_app.verified_user(2004, cards=(b,))
    await _register(irt_app, alice_h, a)
    await _register(irt_app, bob_h, b)
    masked = a[:6] + "******" + a[-4:]
    irt_app.sandbox.state.append_line(amount_rial=900, source_card=masked, bank_reference="AMB-1")
    await _stored(irt_app, "AMB-1")
    assert await irt_app.line_status("AMB-1") == "unmatched"
    assert await irt_app.irt_balance(alice) == 0 and await irt_app.irt_balance(bob) == 0


async def test_an_unmatched_line_lands_in_suspense_and_is_assigned_once(irt_app: IrtApp) -> None:
    stranger = make_card(MELLI, 5)
    uid, headers, _ = await irt_app.verified_user(2005, cards=(stranger,))  # holds it, has not registered it yet
    other, _ = await irt_app.user(2006)
    irt_app.sandbox.state.append_line(amount_rial=42_000, source_card=stranger, bank_reference="SUS-1")
    await _stored(irt_app, "SUS-1")
    assert await irt_app.line_status("SUS-1") == "unmatched"
    listed = (await (await irt_app.client.get("/ops/irt/unmatched", headers=OPS)).json())["lines"]
    assert [(x["bank_reference"], x["amount"], x["status"], x["reason"]) for x in listed] == [
        ("SUS-1", "4200", "unmatched", "unknown_card")]
    assert stranger not in str(listed)
    line_id = listed[0]["id"]
    for _ in range(2):  # assign twice: one credit
        response = await irt_app.client.post(f"/ops/irt/unmatched/{line_id}/assign", json={"user_id": str(uid),
                                             "operator": "ops-maryam"}, headers=OPS)
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == "assigned"
        assert (await response.json())["assigned_by"] == "ops-maryam"
    assert await irt_app.irt_balance(uid) == 42_000
    to_other = await irt_app.client.post(f"/ops/irt/unmatched/{line_id}/assign", json={"user_id": other,
                                         "operator": "ops-maryam"}, headers=OPS)
    assert to_other.status == 409 and (await to_other.json())["error"]["code"] == "already_credited"
    assert await irt_app.irt_balance(other) == 0
    assert (await irt_app.account(SUSPENSE_IRT)) is not None
    assert (await (await irt_app.client.get("/ops/irt/unmatched", headers=OPS)).json())["lines"] == []
    events = await irt_app.events("irt.credited")
    assert [(e["user_id"], e["via"]) for e in events] == [(str(uid), "ops")]
    deposits = (await (await irt_app.client.get("/api/v1/irt/deposits", headers=headers)).json())["deposits"]
    assert [d["bank_reference"] for d in deposits] == ["SUS-1"]
    # A line parked in suspense stays there even once its sender registers: never credited twice.
    await _register(irt_app, headers, stranger)
    irt_app.sandbox.state.duplicate_line("SUS-1")
    irt_app.sandbox.state.append_line(amount_rial=1, source_card=stranger, bank_reference="SUS-2")
    await _stored(irt_app, "SUS-2")
    assert await irt_app.irt_balance(uid) == 42_001


async def test_assign_refuses_bad_input_with_no_state_change(irt_app: IrtApp) -> None:
    uid, _ = await irt_app.user(2007)
    irt_app.sandbox.state.append_line(amount_rial=5, source_iban="IR820540102680020817909002",
                                      bank_reference="BAD-1")
    await _stored(irt_app, "BAD-1")
    line_id = (await (await irt_app.client.get("/ops/irt/unmatched", headers=OPS)).json())["lines"][0]["id"]
    c = irt_app.client
    cases = [
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "ops"}, {}, 401),      # no ops token
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "ops"},
         {"Authorization": "Bearer forged"}, 401),
        ("/ops/irt/unmatched/abc/assign", {"user_id": str(uid), "operator": "ops"}, OPS, 404),
        ("/ops/irt/unmatched/-1/assign", {"user_id": str(uid), "operator": "ops"}, OPS, 404),
        ("/ops/irt/unmatched/99999999/assign", {"user_id": str(uid), "operator": "ops"}, OPS, 404),
        ("/ops/irt/unmatched/" + "9" * 40 + "/assign", {"user_id": str(uid), "operator": "ops"}, OPS, 404),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": 99_999_999, "operator": "ops"}, OPS, 404),   # no such user
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": -3, "operator": "ops"}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": True, "operator": "ops"}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": "1.5", "operator": "ops"}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": "9" * 400, "operator": "ops"}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid)}, OPS, 422),                  # who assigns?
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": ""}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "x" * 65}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "a\nb"}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": 7}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "ops", "x": 1}, OPS, 422),
        (f"/ops/irt/unmatched/{line_id}/assign", {"user_id": str(uid), "operator": "ops"}, OPS, 403),  # unverified
    ]
    for path, body, headers, status in cases:
        response = await c.post(path, json=body, headers=headers)
        assert response.status == status, (path, body, await response.text())
    bad_json = await c.post(f"/ops/irt/unmatched/{line_id}/assign", data=b"{nope",
                            headers={**OPS, "Content-Type": "application/json"})
    assert bad_json.status == 400
    assert (await c.get("/ops/irt/unmatched?limit=0", headers=OPS)).status == 422
    assert (await c.get("/ops/irt/unmatched?after=x", headers=OPS)).status == 422
    assert await irt_app.line_status("BAD-1") == "unmatched" and await irt_app.irt_balance(uid) == 0


async def test_a_failing_statement_source_moves_nothing_until_it_recovers(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 8)
    uid, headers, _ = await irt_app.verified_user(2008, cards=(number,))
    await _register(irt_app, headers, number)
    state = irt_app.sandbox.state
    state.fail(FailureMode.GARBAGE, count=6, scope=Scope.STATEMENT)
    state.append_line(amount_rial=77, source_card=number, bank_reference="FAIL-1")
    await _stored(irt_app, "FAIL-1")
    assert await irt_app.irt_balance(uid) == 77
