"""The identity steps over HTTP: the caller's own Telegram contact, then the national code (Shahkar).

A real Teller on loopback over the Paystar sandbox, on SQLite and PostgreSQL. Every refusal is a
4xx with its stable code and changes nothing; only masked forms leave.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from teller.payments.sandbox_people import PEOPLE
from teller.payments.sandbox_state import FailureMode, Scope
from tests.fixtures.http import BOT_TOKEN
from tests.fixtures.initdata import sign_contact
from tests.irt.conftest import IrtApp, make_card, person_for

MELLI = "603799"


def _contact(telegram_id: int, mobile: str, **kw: Any) -> dict[str, str]:
    return {"contact": sign_contact(BOT_TOKEN, user_id=telegram_id, phone_number="98" + mobile[1:], **kw)}


async def _identity_row(app: IrtApp, uid: int) -> dict[str, Any] | None:
    return await app.store.fetch_one("SELECT mobile, national_code, status FROM identities WHERE user_id = ?", uid)


async def test_contact_then_national_code_verifies_and_shows_masks_only(irt_app: IrtApp) -> None:
    person = person_for(4001)
    irt_app.sandbox.state.add_person(person)
    uid, headers = await irt_app.user(4001)
    c = irt_app.client
    assert await (await c.get("/api/v1/identity", headers=headers)).json() == {
        "status": "none", "mobile_masked": None, "national_code_masked": None, "verified_at": None}
    shared = await c.post("/api/v1/identity/contact", json=_contact(4001, person.mobile), headers=headers)
    assert shared.status == 200, await shared.text()
    body = await shared.json()
    assert body["status"] == "contact_shared"
    assert body["mobile_masked"] == person.mobile[:4] + "*****" + person.mobile[-2:]
    persian = "".join("۰۱۲۳۴۵۶۷۸۹"[int(d)] for d in person.national_code)
    verified = await c.post("/api/v1/identity/national-code", json={"national_code": persian}, headers=headers)
    assert verified.status == 200, await verified.text()
    body = await verified.json()
    assert body["status"] == "verified" and body["national_code_masked"] == "******" + person.national_code[-4:]
    assert body["verified_at"] is not None
    shown = await (await c.get("/api/v1/identity", headers=headers)).text()
    for text in (await shared.text(), await verified.text(), shown):
        assert person.national_code not in text and person.mobile not in text and person.mobile[1:] not in text
    # Verified: the same code again is the same answer; the same contact again too (a replay is harmless).
    again = await c.post("/api/v1/identity/national-code", json={"national_code": person.national_code},
                         headers=headers)
    assert again.status == 200 and (await again.json())["status"] == "verified"
    replay = await c.post("/api/v1/identity/contact", json=_contact(4001, person.mobile), headers=headers)
    assert replay.status == 200 and (await replay.json())["status"] == "verified"
    # ... but the mobile can no longer change.
    other = await c.post("/api/v1/identity/contact", json=_contact(4001, PEOPLE[1].mobile), headers=headers)
    assert other.status == 409 and (await other.json())["error"]["code"] == "identity_verified"
    assert await _identity_row(irt_app, uid) == {"mobile": person.mobile, "national_code": person.national_code,
                                                 "status": "verified"}


async def test_a_contact_that_is_not_the_callers_own_is_refused(irt_app: IrtApp) -> None:
    uid, headers = await irt_app.user(4002)
    someone = PEOPLE[0]
    foreign = await irt_app.client.post("/api/v1/identity/contact", json=_contact(4999, someone.mobile),
                                        headers=headers)
    assert foreign.status == 403 and (await foreign.json())["error"]["code"] == "foreign_contact"
    assert await _identity_row(irt_app, uid) is None


@pytest.mark.parametrize("case", ["forged", "stale", "future", "no_hash", "not_a_string", "huge", "garbage",
                                  "foreign_country", "missing", "extra_field", "user_id_string"])
async def test_bad_contacts_are_4xx_and_store_nothing(irt_app: IrtApp, case: str) -> None:
    uid, headers = await irt_app.user(4003)
    mobile = person_for(4003).mobile
    good = _contact(4003, mobile)["contact"]
    body: Any = {
        "forged": {"contact": sign_contact("999:another-bot", user_id=4003, phone_number="98" + mobile[1:])},
        "stale": _contact(4003, mobile, auth_date=int(time.time()) - 3600),
        "future": _contact(4003, mobile, auth_date=int(time.time()) + 3600),
        "no_hash": {"contact": good.split("&hash=")[0]},
        "not_a_string": {"contact": 12345},
        "huge": {"contact": good + "&x=" + "a" * 5000},
        "garbage": {"contact": "%%%&&&==="},
        "foreign_country": _contact(4003, "0" + "4155550100"),  # +1 415: Shahkar knows no such mobile
        "missing": {},
        "extra_field": {"contact": good, "mobile": "09120000000"},
        "user_id_string": {"contact": good.replace("%22user_id%22%3A4003", "%22user_id%22%3A%224003%22")},
    }[case]
    response = await irt_app.client.post("/api/v1/identity/contact", json=body, headers=headers)
    assert 400 <= response.status < 500, await response.text()
    code = (await response.json())["error"]["code"]
    assert code == ("invalid_input" if case == "extra_field" else "invalid_contact"), code
    assert await _identity_row(irt_app, uid) is None


@pytest.mark.parametrize("bad", ["", "001234567", "00123456790", "0012345678", "1111111111", "00-12-34-567a",
                                 "1" * 5000, 12345679, None, ["0012345679"], "٠٠١٢٣٤٥٦٧٨"])
async def test_bad_national_codes_are_422_and_ask_nobody(irt_app: IrtApp, bad: Any) -> None:
    person = person_for(4004)
    irt_app.sandbox.state.add_person(person)
    uid, headers = await irt_app.user(4004)
    await irt_app.client.post("/api/v1/identity/contact", json=_contact(4004, person.mobile), headers=headers)
    asked = irt_app.sandbox.state.requests[Scope.MATCHING]
    body = {} if bad is None else {"national_code": bad}
    response = await irt_app.client.post("/api/v1/identity/national-code", json=body, headers=headers)
    assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_national_code"
    assert irt_app.sandbox.state.requests[Scope.MATCHING] == asked
    assert (await _identity_row(irt_app, uid) or {}).get("status") == "contact_shared"


async def test_national_code_needs_a_contact_first(irt_app: IrtApp) -> None:
    uid, headers = await irt_app.user(4005)
    response = await irt_app.client.post("/api/v1/identity/national-code", json={"national_code": "0012345679"},
                                         headers=headers)
    assert response.status == 409 and (await response.json())["error"]["code"] == "contact_required"
    assert await _identity_row(irt_app, uid) is None


async def test_a_national_code_that_is_not_the_mobiles_is_422_identity_mismatch(irt_app: IrtApp) -> None:
    me = person_for(4006)
    irt_app.sandbox.state.add_person(me)
    uid, headers = await irt_app.user(4006)
    await irt_app.client.post("/api/v1/identity/contact", json=_contact(4006, me.mobile), headers=headers)
    response = await irt_app.client.post("/api/v1/identity/national-code",
                                         json={"national_code": PEOPLE[0].national_code}, headers=headers)
    assert response.status == 422 and (await response.json())["error"]["code"] == "identity_mismatch"
    assert (await _identity_row(irt_app, uid) or {})["status"] == "contact_shared"


async def test_one_national_code_is_verified_on_one_account_only(irt_app: IrtApp) -> None:
    person = person_for(4007)
    irt_app.sandbox.state.add_person(person)
    await irt_app.verified_user(4007)  # holds the person of 4007
    _, second = await irt_app.user(4008)  # the same person, another Telegram account
    await irt_app.client.post("/api/v1/identity/contact", json=_contact(4008, person.mobile), headers=second)
    taken = await irt_app.client.post("/api/v1/identity/national-code",
                                      json={"national_code": person_for(4007).national_code}, headers=second)
    assert taken.status == 409 and (await taken.json())["error"]["code"] == "national_code_taken"
    assert person.name not in await taken.text()


@pytest.mark.parametrize(("mode", "status", "code"), [
    (FailureMode.ERROR, 502, "provider_unavailable"), (FailureMode.TIMEOUT, 502, "provider_unavailable"),
    (FailureMode.GARBAGE, 502, "provider_unavailable"), (FailureMode.MALFORMED, 502, "provider_unavailable"),
    (FailureMode.LIMIT, 429, "provider_limit"), (FailureMode.MISMATCH, 422, "identity_mismatch"),
])
async def test_the_provider_failing_stores_nothing(irt_app: IrtApp, mode: str, status: int, code: str) -> None:
    person = person_for(4009)
    irt_app.sandbox.state.add_person(person)
    uid, headers = await irt_app.user(4009)
    await irt_app.client.post("/api/v1/identity/contact", json=_contact(4009, person.mobile), headers=headers)
    irt_app.sandbox.state.fail(mode, count=10, scope=Scope.MATCHING)
    response = await irt_app.client.post("/api/v1/identity/national-code",
                                         json={"national_code": person.national_code}, headers=headers)
    assert response.status == status, await response.text()
    assert (await response.json())["error"]["code"] == code
    assert (await _identity_row(irt_app, uid) or {})["status"] == "contact_shared"
    irt_app.sandbox.state.clear_failures()
    retry = await irt_app.client.post("/api/v1/identity/national-code",
                                      json={"national_code": person.national_code}, headers=headers)
    assert retry.status == 200  # nothing was left behind that blocks asking again


async def test_without_identity_nothing_can_be_added(irt_app: IrtApp) -> None:
    uid, headers = await irt_app.user(4010)
    mine = person_for(4010, cards=(make_card(MELLI, 4010),))
    irt_app.sandbox.state.add_person(mine)
    c = irt_app.client
    for path, body in (("/api/v1/cards", {"card_number": mine.cards[0]}),
                       ("/api/v1/ibans", {"iban": PEOPLE[0].ibans[0]})):
        response = await c.post(path, json=body, headers=headers)
        assert response.status == 403 and (await response.json())["error"]["code"] == "identity_required"
    # Half-way (a contact, no national code) is not enough.
    await c.post("/api/v1/identity/contact", json=_contact(4010, mine.mobile), headers=headers)
    response = await c.post("/api/v1/cards", json={"card_number": mine.cards[0]}, headers=headers)
    assert response.status == 403 and (await response.json())["error"]["code"] == "identity_required"
    assert await irt_app.count("cards") == 0 and await irt_app.count("ibans") == 0
    assert irt_app.sandbox.state.requests[Scope.INQUIRY] == 0
