"""The Mini App page (`GET /`) in a real browser: Debian's Chromium driven by Playwright.

What a user sees: sign-in with Telegram init data (or the dev sign-in), balances, the deposit
address and a QR code that encodes exactly that address, activity, a withdrawal form whose
submissions carry an Idempotency-Key and whose API errors are shown. The Rial tab: test_miniapp_rial.py.
Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
import segno
from segno import encoder as segno_encoder

from tests.fixtures.browser import (
    INIT_DATA_MAX_AGE_S,
    PHONE_VIEWPORT,
    MiniAppSite,
    SiteFactory,
    build_init_data,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RECIPIENT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TELEGRAM_DARK_THEME = {
    "bg_color": "#17212b", "secondary_bg_color": "#0e1621", "text_color": "#f5f5f5",
    "hint_color": "#708499", "link_color": "#6ab3f3", "button_color": "#5288c1", "button_text_color": "#ffffff",
}

# Rasterise the page's QR SVG in the page and read one sample per module: what a camera would see.
READ_QR_JS = """async (scale) => {
  const svg = document.querySelector('#deposit-qr svg');
  const full = svg.viewBox.baseVal.width, px = full * scale;
  const img = new Image();
  img.src = 'data:image/svg+xml;base64,' + btoa(new XMLSerializer().serializeToString(svg));
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = px;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0, px, px);
  const data = ctx.getImageData(0, 0, px, px).data;
  const rows = [];
  for (let r = 0; r < full; r++) {
    let row = '';
    for (let c = 0; c < full; c++) {
      const i = ((r * scale + scale / 2) * px + (c * scale + scale / 2)) * 4;
      row += data[i] < 128 ? '1' : '0';
    }
    rows.push(row);
  }
  return {rows, version: +svg.dataset.version, mask: +svg.dataset.mask, quiet: +svg.dataset.quietZone};
}"""


# What Telegram's mobile clients inject into the page before it runs: the bridge the page talks to.
TELEGRAM_HOST_SCRIPT = """
  window.__hostEvents = [];
  window.TelegramWebviewProxy = { postEvent(type, data) { window.__hostEvents.push(type); } };
"""


def fake_telegram_script(init_data: str, *, theme: dict[str, str] | None = None, scheme: str = "light",
                         host: bool = True) -> str:
    """A stand-in for Telegram's SDK object, present before the page's scripts run; with ``host``
    inside a Telegram client, without it the SDK's object as it is in any browser given the link."""
    return (TELEGRAM_HOST_SCRIPT if host else "") + f"""
      window.__telegramCalls = [];
      window.Telegram = {{ WebApp: {{
        initData: {json.dumps(init_data)}, initDataUnsafe: {{}}, themeParams: {json.dumps(theme or {})},
        colorScheme: {json.dumps(scheme)}, version: "7.0", platform: "tdesktop",
        ready() {{ window.__telegramCalls.push("ready"); }},
        expand() {{ window.__telegramCalls.push("expand"); }},
        onEvent() {{}}, openTelegramLink() {{}}, HapticFeedback: {{ notificationOccurred() {{}} }},
      }} }};
    """


class Session:
    """A phone-sized page plus what it asked the network for."""

    def __init__(self, page: Any, site: MiniAppSite) -> None:
        self.page = page
        self.site = site
        self.init_data = ""
        self.requests: list[Any] = []
        self.api_answers: dict[str, Any] = {}
        self.console_errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", self._record_response)
        page.on("console", lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    async def _record_response(self, response: Any) -> None:
        if "/api/v1/" in response.url and response.ok:
            try:
                self.api_answers[response.request.method + " " + urlsplit(response.url).path] = await response.json()
            except Exception:  # a body that is gone or not JSON is simply not recorded
                pass

    def off_origin_requests(self) -> list[str]:
        return [r.url for r in self.requests if not r.url.startswith(self.site.base_url) and not r.url.startswith("data:")]


async def open_page(chromium: Any, site: MiniAppSite, *, init_script: str | None = None,
                    scheme: str = "light", url_suffix: str = "") -> Session:
    context = await chromium.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, color_scheme=scheme,
                                         is_mobile=True, has_touch=True)
    page = await context.new_page()
    if init_script:
        await page.add_init_script(script=init_script)
    session = Session(page, site)
    await page.goto(site.base_url + "/" + url_suffix)
    return session


async def open_wallet(chromium: Any, site: MiniAppSite, **kwargs: Any) -> Session:
    init_data = build_init_data(bot_token=site.bot_token, user=site.telegram_user)
    session = await open_page(chromium, site, init_script=fake_telegram_script(init_data, **kwargs))
    session.init_data = init_data
    await session.page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    await session.page.wait_for_selector("#deposit-qr svg")
    return session


def balance_row(page: Any, asset: str) -> Any:
    return page.locator(f'.asset-row[data-asset="{asset}"]')


async def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_signs_in_with_telegram_init_data_and_shows_balances(chromium: Any, miniapp_server: MiniAppSite) -> None:
    session = await open_wallet(chromium, miniapp_server)
    page = session.page
    await screenshot(page, "miniapp.png")

    usdt = balance_row(page, "USDT")
    assert await usdt.locator(".balance-available").inner_text() == "10.5"
    assert await usdt.locator(".balance-held").inner_text() == "2 on hold"
    irt = balance_row(page, "IRT")  # IRT is the toman: its amount as the API gives it, its unit by name
    assert await irt.locator(".balance-available").inner_text() == "125,000.5"
    assert await irt.locator(".asset-name strong").inner_text() == "Toman"
    assert "Alice" in await page.locator("#who-name").inner_text()
    sign_in = [r for r in session.requests if r.url.endswith("/api/v1/auth/telegram")]
    assert [json.loads(r.post_data) for r in sign_in] == [{"init_data": session.init_data}]
    assert await page.evaluate("window.__telegramCalls") == ["ready", "expand"]
    assert session.off_origin_requests() == []  # works offline: no CDN, font or SDK fetched
    assert session.console_errors == []
    assert "{" not in await page.locator("#app").inner_text()  # no raw JSON in front of users


async def test_deposit_address_is_shown_with_a_qr_code_that_encodes_it(chromium: Any, miniapp_server: MiniAppSite) -> None:
    session = await open_wallet(chromium, miniapp_server)
    page = session.page
    address = session.api_answers["POST /api/v1/deposit-addresses"]["address"]
    assert await page.locator("#deposit-address").inner_text() == address
    assert "Ethereum" in await page.locator("#deposit-note").inner_text()

    box = await page.locator("#deposit-qr svg").bounding_box()
    assert box is not None and box["width"] >= 180  # big enough to scan from another phone
    seen = await page.evaluate(READ_QR_JS, 8)
    reference = segno.make(address, error="m", mode="byte", micro=False, boost_error=False,
                           version=seen["version"], mask=seen["mask"])
    expected = ["".join(str(v) for v in row) for row in reference.matrix_iter(border=seen["quiet"])]
    assert seen["rows"] == expected
    assert seen["version"] == segno.make(address, error="m", mode="byte", micro=False, boost_error=False).version

    await page.click("#copy-address")
    await page.wait_for_selector("#toast:not([hidden])")


def _spec_padding(buff: Any, version: int, length: int) -> None:
    # segno appends a whole zero byte when the bit stream already ends on a byte boundary; ISO 18004
    # 7.4.10 pads only up to the boundary. Both decode the same; compare against the standard.
    buff.extend([0] * ((8 - length % 8) % 8))


@pytest.mark.parametrize("length", [1, 14, 15, 42, 53, 100, 120, 160, 213])
async def test_qr_encoder_matches_segno_for_versions_1_to_10(chromium: Any, miniapp_server: MiniAppSite, length: int) -> None:
    page = await (await chromium.new_context()).new_page()
    await page.goto(miniapp_server.base_url + "/")
    text = ("ethereum:0x8ba1f109551bD432803012645Ac136ddd64DBA72?value=1e18&ünïcode" * 4)[:length]
    while len(text.encode()) > length:  # `length` counts UTF-8 bytes, what the symbol holds
        text = text[:-1]
    ours = await page.evaluate("(t) => { const q = TellerQR.encode(t); return {version: q.version, mask: q.mask,"
                               " rows: q.modules.map(r => r.map(d => d ? '1' : '0').join(''))}; }", text)
    with mock.patch.object(segno_encoder, "write_padding_bits", _spec_padding):
        reference = segno.make(text.encode(), error="m", mode="byte", micro=False, boost_error=False,
                               version=ours["version"], mask=ours["mask"])
        smallest = segno.make(text.encode(), error="m", mode="byte", micro=False, boost_error=False)
    assert ours["rows"] == ["".join(str(v) for v in row) for row in reference.matrix_iter(border=0)]
    assert ours["version"] == smallest.version


async def test_withdrawal_form_sends_a_fresh_idempotency_key_per_submission(chromium: Any, miniapp_server: MiniAppSite) -> None:
    page = (await open_wallet(chromium, miniapp_server)).page
    await page.click("#tab-withdraw")
    assert await page.locator("#withdraw-fee").inner_text() == "0.5 USDT"
    assert await page.locator("#withdraw-min").inner_text() == "1 USDT"

    keys = []
    for amount in ("5", "1"):
        await page.fill("#withdraw-to", RECIPIENT)
        await page.fill("#withdraw-amount", amount)
        await page.click("#withdraw-review")
        assert RECIPIENT in await page.locator("#withdraw-confirm-text").inner_text()
        if amount == "5":
            await screenshot(page, "miniapp-withdraw.png")
        async with page.expect_request(lambda r: r.url.endswith("/api/v1/withdrawals") and r.method == "POST") as sent:
            await page.click("#withdraw-send")
        request = await sent.value
        keys.append(request.headers.get("idempotency-key", ""))
        assert json.loads(request.post_data) == {"chain": "ethereum", "asset": "USDT", "to": RECIPIENT, "amount": amount}
        await page.wait_for_selector("#withdraw-success:not([hidden])")
    assert all(UUID_RE.match(key) for key in keys) and keys[0] != keys[1]
    # 10.5 - (5 + 0.5) - (1 + 0.5) = 3.5 left, 2 + 7 on hold
    await page.wait_for_function("document.querySelector('.asset-row[data-asset=USDT] .balance-available').textContent === '3.5'")
    await page.click("#tab-activity")
    assert await page.locator('.activity-row[data-kind="withdrawal"]').count() == 2


@pytest.mark.parametrize(("to", "amount", "where", "says"), [
    (RECIPIENT, "100", "#withdraw-alert", "Not enough funds"),
    (RECIPIENT, "2000", "#withdraw-alert", "over your withdrawal limit"),
    ("0x8ba1f109551bd432803012645Ac136ddd64DBA72", "2", "#withdraw-to-error", "checksum"),
])
async def test_withdrawal_errors_from_the_api_are_shown(chromium: Any, miniapp_server: MiniAppSite,
                                                        to: str, amount: str, where: str, says: str) -> None:
    page = (await open_wallet(chromium, miniapp_server)).page
    await page.click("#tab-withdraw")
    await page.fill("#withdraw-to", to)
    await page.fill("#withdraw-amount", amount)
    await page.click("#withdraw-review")
    await page.click("#withdraw-send")
    await page.wait_for_selector(f"{where}:has-text('{says}')")
    assert await page.locator("#withdraw-success").is_hidden()


async def test_withdrawal_form_checks_input_before_asking(chromium: Any, miniapp_server: MiniAppSite) -> None:
    session = await open_wallet(chromium, miniapp_server)
    page = session.page
    await page.click("#tab-withdraw")
    await page.fill("#withdraw-to", "not an address")
    await page.fill("#withdraw-amount", "0.5")
    await page.click("#withdraw-review")
    assert "0x" in await page.locator("#withdraw-to-error").inner_text()
    assert "minimum" in await page.locator("#withdraw-amount-error").inner_text()
    await page.fill("#withdraw-amount", "1.0000001")
    await page.click("#withdraw-review")
    assert "6 decimals" in await page.locator("#withdraw-amount-error").inner_text()
    assert not [r for r in session.requests if r.url.endswith("/api/v1/withdrawals") and r.method == "POST"]


async def test_activity_shows_deposit_statuses_and_confirmations(chromium: Any, miniapp_server: MiniAppSite) -> None:
    page = (await open_wallet(chromium, miniapp_server)).page
    await page.click("#tab-activity")
    pending = page.locator('.activity-row[data-id="d3"]')
    assert "3/12 confirmations" in await pending.inner_text()
    assert await pending.locator(".badge").inner_text() == "Pending"
    assert await page.locator('.activity-row[data-id="d1"] .badge').inner_text() == "Credited"
    assert await page.locator('.activity-row[data-id="d2"] .badge').get_attribute("data-status") == "orphaned"
    await screenshot(page, "miniapp-activity.png")


async def test_sections_whose_routes_fail_are_hidden(chromium: Any, miniapp_site_factory: SiteFactory) -> None:
    site = await miniapp_site_factory(disabled_paths=frozenset({"/api/v1/identity", "/api/v1/irt/deposit-info", "/api/v1/cards"}))
    session = await open_wallet(chromium, site)
    assert await session.page.locator("#tab-rial").is_hidden()
    assert await balance_row(session.page, "USDT").locator(".balance-available").inner_text() == "10.5"


async def test_dev_sign_in_outside_telegram(chromium: Any, miniapp_site_factory: SiteFactory) -> None:
    site = await miniapp_site_factory(dev=True)
    session = await open_page(chromium, site)
    page = session.page
    await page.wait_for_selector("#signin-dev:not([hidden])")
    assert await page.locator("#dev-badge").is_visible()
    await screenshot(page, "miniapp-dev-signin.png")
    await page.fill("#dev-telegram-id", "777")
    async with page.expect_request(lambda r: r.url.endswith("/api/v1/auth/telegram")) as sent:
        await page.click("#dev-signin-form button[type=submit]")
    assert (await sent.value).headers.get("x-telegram-id") == "777"
    await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    assert await balance_row(page, "USDT").locator(".balance-available").inner_text() == "10.5"


async def test_without_telegram_and_without_dev_mode_it_asks_to_open_telegram(chromium: Any, miniapp_server: MiniAppSite) -> None:
    page = (await open_page(chromium, miniapp_server)).page
    await page.wait_for_selector("#signin-telegram:not([hidden])")
    assert await page.locator("#signin-dev").is_hidden()
    assert await page.get_attribute("#open-in-telegram", "href") == "https://t.me/teller_test_bot"


async def test_signs_in_again_when_the_token_expires(chromium: Any, miniapp_server: MiniAppSite) -> None:
    if miniapp_server.standin is None:
        pytest.skip("needs the stand-in server to expire tokens")
    session = await open_wallet(chromium, miniapp_server)
    page = session.page
    miniapp_server.standin.revoke_tokens()
    await page.click("#tab-withdraw")
    await page.fill("#withdraw-to", RECIPIENT)
    await page.fill("#withdraw-amount", "2")
    await page.click("#withdraw-review")
    await page.click("#withdraw-send")
    await page.wait_for_selector("#withdraw-success:not([hidden])")
    assert miniapp_server.standin.auth_requests == ["init_data", "init_data"]
    sent = [r for r in session.requests if r.url.endswith("/api/v1/withdrawals") and r.method == "POST"]
    keys = [r.headers.get("idempotency-key") for r in sent]
    assert len(keys) == 2 and keys[0] == keys[1]  # the retry after signing in again reuses the key
    assert [key for key, _ in miniapp_server.standin.withdrawal_requests] == keys[:1]


# Counts the page's calls to fetch, synchronously, so a test can tell what a timer tick sent.
COUNT_FETCHES_SCRIPT = """
  window.__fetches = [];
  const realFetch = window.fetch;
  window.fetch = function (url, init) { window.__fetches.push(String(url)); return realFetch.apply(this, arguments); };
"""


async def test_an_expired_telegram_session_ends_once_and_says_to_reopen_from_the_bot(
        chromium: Any, miniapp_server: MiniAppSite) -> None:
    if miniapp_server.standin is None:
        pytest.skip("needs the stand-in server to move its clock")
    init_data = build_init_data(bot_token=miniapp_server.bot_token, user=miniapp_server.telegram_user)
    context = await chromium.new_context(viewport=PHONE_VIEWPORT, is_mobile=True)
    page = await context.new_page()
    await page.clock.install()
    await page.add_init_script(script=fake_telegram_script(init_data) + COUNT_FETCHES_SCRIPT)
    await page.goto(miniapp_server.base_url + "/")
    await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    await page.wait_for_selector("#deposit-qr svg")
    # The wallet stays open past the JWT's life and the init data's: both are refused now.
    miniapp_server.standin.advance_clock(INIT_DATA_MAX_AGE_S + 1)
    await page.click("#refresh")  # five sections ask at once; each gets a 401
    await page.wait_for_selector("#screen-signin:not([hidden])")
    assert "open it again from the bot" in await page.locator("#signin-error").inner_text()
    assert await page.locator("#screen-wallet").is_hidden()
    assert await page.locator(".asset-row").count() == 0  # no stale balances left behind
    assert await page.locator("#deposit-address").inner_text() == ""
    assert miniapp_server.standin.auth_requests == ["init_data", "init_data"]  # one shared re-sign-in

    fetches = await page.evaluate("window.__fetches.length")
    await page.clock.run_for(10 * 60 * 1000)  # ten minutes of the page's timers: no polling, no sign-in
    assert await page.evaluate("window.__fetches.length") == fetches
    assert miniapp_server.standin.auth_requests == ["init_data", "init_data"]
    await context.close()


async def test_a_session_that_was_already_expired_at_opening_says_to_reopen_from_the_bot(
        chromium: Any, miniapp_server: MiniAppSite) -> None:
    """A guard, not a regression test: the opening sign-in said this before the session handling changed."""
    init_data = build_init_data(bot_token=miniapp_server.bot_token, user=miniapp_server.telegram_user,
                                auth_date=int(time.time()) - INIT_DATA_MAX_AGE_S - 60)
    page = (await open_page(chromium, miniapp_server, init_script=fake_telegram_script(init_data))).page
    await page.wait_for_selector("#screen-signin:not([hidden])")
    assert "open it again from the bot" in await page.locator("#signin-error").inner_text()
