"""What a refused national code reveals: nothing about other customers. Found by an adversarial review: a code
verified by another account answered 409 national_code_taken at once (before the provider), any other code
not the caller's 422 identity_mismatch, so anyone with a shared contact could test whether a national code
belongs to a Teller customer."""

from __future__ import annotations

from tests.fixtures.http import BOT_TOKEN
from tests.fixtures.initdata import sign_contact
from tests.irt.conftest import IrtApp, person_for


async def test_a_customers_national_code_is_refused_like_any_code_that_is_not_the_callers(irt_app: IrtApp) -> None:
    victim = person_for(8201)
    await irt_app.verified_user(8201)
    prober = person_for(8202)
    irt_app.sandbox.state.add_person(prober)
    _, headers = await irt_app.user(8202)
    contact = sign_contact(BOT_TOKEN, user_id=8202, phone_number="98" + prober.mobile[1:])
    shared = await irt_app.client.post("/api/v1/identity/contact", json={"contact": contact}, headers=headers)
    assert shared.status == 200, await shared.text()
    stranger = person_for(8203)
    irt_app.sandbox.state.add_person(stranger)  # known to the provider, never a Teller user
    answers = []
    for code in (victim.national_code, stranger.national_code):
        response = await irt_app.client.post("/api/v1/identity/national-code", json={"national_code": code},
                                             headers=headers)
        answers.append((response.status, (await response.json())["error"]["code"]))
    assert answers == [(422, "identity_mismatch"), (422, "identity_mismatch")]
