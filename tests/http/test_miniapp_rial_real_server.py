"""The Rial tab against the real Teller (IRT on, the Paystar sandbox as the provider and the bank), in
Chromium on a phone: the page and the server agree on the identity/card contract end to end. The
stand-in tests (test_miniapp_rial.py) cover every error's words; this one covers the real answers."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from teller.payments.sandbox import SandboxHandle
from teller.payments.sandbox_people import Person
from tests.fixtures.browser import PHONE_VIEWPORT, TEST_TELEGRAM_USER, build_init_data
from tests.fixtures.http import BOT_TOKEN
from tests.fixtures.initdata import sign_contact
from tests.fixtures.teller_app import served_teller
from tests.http.test_miniapp_page import fake_telegram_script
from tests.irt.conftest import irt_settings, make_card, make_iban, person_for, until

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _contact_answer(person: Person) -> str:
    """What Telegram's SDK hands requestContact's callback: [shared, {status, response, responseUnsafe}]."""
    phone = "98" + person.mobile[1:]
    signed = sign_contact(BOT_TOKEN, user_id=TEST_TELEGRAM_USER["id"], phone_number=phone)
    result = {"status": "sent", "response": signed,
              "responseUnsafe": {"contact": {"user_id": TEST_TELEGRAM_USER["id"], "phone_number": phone}}}
    return f"""
      window.Telegram.WebApp.requestContact = function (callback) {{
        setTimeout(() => callback(true, {json.dumps(result)}), 30);
      }};
    """


async def test_the_rial_tab_walks_identity_card_and_a_credited_line_on_the_real_server(
        chromium: Any, store: Any, paystar_sandbox: SandboxHandle, paystar_settings: Any) -> None:
    card, iban = make_card("603799", 71), make_iban(71)
    person = person_for(71, cards=(card,), ibans=(iban,), name="Sara Example")
    paystar_sandbox.state.add_person(person)
    # The real Paystar client and statement source over loopback, as production builds them.
    async with served_teller(irt_settings(paystar_settings), store) as (_teller, port):
        context = await chromium.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True)
        page = await context.new_page()
        init_data = build_init_data(bot_token=BOT_TOKEN, user=TEST_TELEGRAM_USER)
        await page.add_init_script(script=fake_telegram_script(init_data) + _contact_answer(person))
        await page.goto(f"http://127.0.0.1:{port}/#tgWebAppData=" + quote(init_data, safe=""))
        await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
        await page.click("#tab-rial")
        await page.wait_for_selector("#identity-badge .badge[data-status=none]")

        await page.click("#contact-share")
        await page.wait_for_selector("#national-form:not([hidden])")
        await page.fill("#national-code", person.national_code.translate(PERSIAN_DIGITS))
        await page.click("#national-submit")
        await page.wait_for_selector("#identity-badge .badge[data-status=verified]")
        shown = await page.locator("#app").inner_text()
        assert person.national_code not in shown and person.mobile not in shown

        await page.fill("#card-number", card)
        await page.click("#card-add")
        await page.wait_for_selector("#card-list .bank-card .badge[data-status=verified]")
        assert card[6:12] not in await page.locator("#card-list").inner_text()
        await page.fill("#iban-number", iban)
        await page.click("#iban-add")
        await page.wait_for_selector("#iban-list .bank-card .badge[data-status=verified]")

        # The bank reports 1,500,005 rials from that card: 150,000.5 tomans land in the tab.
        paystar_sandbox.state.append_line(amount_rial=1_500_005, source_card=card, bank_reference="REAL-1")
        user = await store.users.get_or_create(telegram_id=TEST_TELEGRAM_USER["id"])

        async def credited() -> bool:
            return any(b.asset == "IRT" and b.available_minor == 1_500_005 for b in await store.ledger.balances(user.id))

        await until(credited)
        await page.reload()  # inside Telegram: signs in again from what the tab kept
        await page.click("#tab-rial")
        await page.wait_for_selector("#irt-deposits-section:not([hidden]) .activity-row")
        assert "+150,000.5 tomans" in await page.locator("#irt-deposit-list").inner_text()
        await context.close()
    assert await store.ledger.check_invariants() == []
