"""The Mini App page under attack, in a real Chromium and over HTTP.

- Init data in a link (``/?tgWebAppData=…`` or ``/#tgWebAppData=…``) signs nobody in unless a
  Telegram client hosts the page; inside one it signs in and leaves the address bar at once.
- One Content-Security-Policy on every response; the page is served once (at ``/``) and only
  Telegram's web client may frame it; ``nosniff`` everywhere; no versions in ``Server``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from teller.http.headers import CONTENT_SECURITY_POLICY
from tests.fixtures.browser import TEST_TELEGRAM_USER, MiniAppSite, build_init_data
from tests.fixtures.browser_irt import PEOPLE
from tests.fixtures.common import free_port
from tests.fixtures.http import BOT_TOKEN
from tests.http.test_miniapp_page import (
    TELEGRAM_DARK_THEME,
    TELEGRAM_HOST_SCRIPT,
    fake_telegram_script,
    open_page,
)

VERSION_RE = re.compile(r"\d+\.\d+")


def _link_init_data(site: MiniAppSite) -> str:
    return build_init_data(bot_token=site.bot_token, user=site.telegram_user)


@pytest.mark.parametrize("where", ["?", "#"])
async def test_a_plain_browser_given_a_link_with_init_data_does_not_sign_in(
        chromium: Any, miniapp_server: MiniAppSite, where: str) -> None:
    assert miniapp_server.standin is not None
    init_data = _link_init_data(miniapp_server)
    session = await open_page(chromium, miniapp_server, url_suffix=where + "tgWebAppData=" + quote(init_data, safe=""))
    page = session.page
    await page.wait_for_selector("#signin-telegram:not([hidden])")
    assert await page.locator("#screen-wallet").is_hidden()
    assert miniapp_server.standin.auth_requests == []
    assert "tgWebAppData" not in await page.evaluate("location.href")
    # The link itself is the only request line that may carry it (a query string is sent by the browser).
    carrying = [line for line in miniapp_server.standin.request_lines if quote(init_data, safe="") in line]
    assert carrying == (["GET /?tgWebAppData=" + quote(init_data, safe="")] if where == "?" else [])


async def test_telegram_sdk_object_alone_is_no_proof_of_telegram(chromium: Any, miniapp_server: MiniAppSite) -> None:
    """Telegram's SDK script fills in WebApp.initData from the fragment in any browser."""
    assert miniapp_server.standin is not None
    script = fake_telegram_script(_link_init_data(miniapp_server), host=False)
    page = (await open_page(chromium, miniapp_server, init_script=script)).page
    await page.wait_for_selector("#signin-telegram:not([hidden])")
    assert miniapp_server.standin.auth_requests == []


async def test_inside_telegram_the_fragment_signs_in_and_leaves_the_address_bar(
        chromium: Any, miniapp_server: MiniAppSite) -> None:
    assert miniapp_server.standin is not None
    init_data = _link_init_data(miniapp_server)
    fragment = ("#tgWebAppData=" + quote(init_data, safe="") + "&tgWebAppVersion=7.0&tgWebAppThemeParams="
                + quote(json.dumps(TELEGRAM_DARK_THEME), safe=""))
    session = await open_page(chromium, miniapp_server, init_script=TELEGRAM_HOST_SCRIPT, url_suffix=fragment)
    page = session.page
    await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    assert await page.evaluate("location.href") == miniapp_server.base_url + "/"
    sign_in = [r for r in session.requests if r.url.endswith("/api/v1/auth/telegram")]
    assert [json.loads(r.post_data) for r in sign_in] == [{"init_data": init_data}]
    assert miniapp_server.standin.auth_requests == ["init_data"]
    assert not [line for line in miniapp_server.standin.request_lines if "tgWebApp" in line]
    assert await page.evaluate("window.__hostEvents") == ["web_app_ready", "web_app_expand"]
    bg = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(14, 22, 33)"  # the theme from the fragment, read before the fragment was dropped
    # The SDK it then fetches from telegram.org cannot load here; nothing of the page breaks the policy.
    assert not [error for error in session.console_errors if "Content Security Policy" in error]


async def test_a_reload_inside_telegram_signs_in_again_and_a_plain_tab_never_reads_what_it_kept(
        chromium: Any, miniapp_server: MiniAppSite) -> None:
    """Telegram's "Reload page" reloads the bare URL (the fragment was dropped): the launch parameters kept
    for this tab (sessionStorage) sign in again, but only while a Telegram client hosts the page."""
    assert miniapp_server.standin is not None
    init_data = _link_init_data(miniapp_server)
    # The host's transport is there until the test says otherwise (for the same tab's last reload).
    host_unless_told = "if (!sessionStorage.getItem('test.noHost')) {" + TELEGRAM_HOST_SCRIPT + "}"
    session = await open_page(chromium, miniapp_server, init_script=host_unless_told,
                              url_suffix="#tgWebAppData=" + quote(init_data, safe=""))
    page = session.page
    await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    await page.reload()
    await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    assert await page.evaluate("location.href") == miniapp_server.base_url + "/"
    assert miniapp_server.standin.auth_requests == ["init_data", "init_data"]
    # The same tab, what it kept still there, but no Telegram client hosting it: no sign-in.
    await page.evaluate("sessionStorage.setItem('test.noHost', '1')")
    await page.reload()
    await page.wait_for_selector("#signin-telegram:not([hidden])")
    assert miniapp_server.standin.auth_requests == ["init_data", "init_data"]


async def test_framed_by_telegrams_web_client_the_fragment_signs_in(chromium: Any, miniapp_server: MiniAppSite) -> None:
    """The third host transport (a guard: the page signed in here before too). Playwright serves
    https://web.telegram.org, the one origin the CSP lets frame the page."""
    assert miniapp_server.standin is not None
    init_data = _link_init_data(miniapp_server)
    wallet_url = miniapp_server.base_url + "/#tgWebAppData=" + quote(init_data, safe="") + "&tgWebAppVersion=7.0"
    page = await (await chromium.new_context()).new_page()
    await page.route("https://web.telegram.org/**", lambda route: route.fulfill(
        content_type="text/html", body=f'<iframe src="{wallet_url}"></iframe>'))
    await page.goto("https://web.telegram.org/k/")
    wallet = page.frames[1]
    await wallet.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
    assert await wallet.evaluate("location.href") == miniapp_server.base_url + "/"
    assert miniapp_server.standin.auth_requests == ["init_data"]


# --- the real server's headers ---

@pytest.fixture
async def real_site(api: TestClient) -> MiniAppSite:
    """The real Teller app (``api``'s loopback server) as a site for the browser."""
    return MiniAppSite(base_url=str(api.make_url("")).rstrip("/"), bot_token=BOT_TOKEN,
                       telegram_user=TEST_TELEGRAM_USER, person=PEOPLE[0], stranger=PEOPLE[-1], standin=None)


def _assert_common_headers(response: Any) -> None:
    assert response.headers.getall("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
    assert response.headers.getall("X-Content-Type-Options") == ["nosniff"]
    assert not VERSION_RE.search(response.headers["Server"]), response.headers["Server"]
    assert "aiohttp" not in response.headers["Server"].lower() and "python" not in response.headers["Server"].lower()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/", 200),
    ("GET", "/static/app.js", 200),
    ("GET", "/static/index.html", 404),
    ("GET", "/no-such-page", 404),
    ("GET", "/api/v1/balances", 401),
    ("DELETE", "/", 405),
    ("GET", "/static/../config.py", 404),
])
async def test_every_response_carries_one_policy_nosniff_and_no_server_version(
        api: TestClient, method: str, path: str, status: int) -> None:
    response = await api.request(method, path, headers={"Accept": "text/html"})
    assert response.status == status
    _assert_common_headers(response)


async def test_the_page_is_served_once_without_a_second_policy_in_it(api: TestClient) -> None:
    response = await api.get("/")
    assert response.content_type == "text/html"
    html = await response.text()
    assert "http-equiv" not in html.lower()  # a meta policy would be a second, different policy
    assert (await api.get("/static/index.html")).status == 404
    script = await api.get("/static/app.js")
    assert script.content_type in ("application/javascript", "text/javascript")


@pytest.fixture
async def other_origin(real_site: MiniAppSite) -> AsyncIterator[str]:
    """A page on another origin that frames the wallet (and, as a control, a page of its own)."""
    async def framing(request: web.Request) -> web.Response:
        frames = "".join(f'<iframe src="{src}"></iframe>' for src in
                         (real_site.base_url + "/", real_site.base_url + "/static/index.html", "/own"))
        return web.Response(content_type="text/html", text=frames)

    async def own(request: web.Request) -> web.Response:
        return web.Response(content_type="text/html", text='<div id="app">framed</div>')

    app = web.Application()
    app.router.add_get("/", framing)
    app.router.add_get("/own", own)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_another_origin_cannot_frame_the_page(chromium: Any, other_origin: str) -> None:
    page = await (await chromium.new_context()).new_page()
    await page.goto(other_origin)
    await page.wait_for_load_state("load")
    shown = [await frame.evaluate("document.getElementById('app') !== null") for frame in page.frames[1:]]
    assert shown == [False, False, True]  # the wallet twice refused; the other origin's own frame shows


async def test_script_src_allows_telegrams_sdk_file_and_nothing_else_of_telegram_org(
        chromium: Any, real_site: MiniAppSite) -> None:
    page = (await open_page(chromium, real_site)).page
    await page.route("https://telegram.org/**", lambda route: route.fulfill(body="", content_type="text/javascript"))
    await page.route("https://example.org/**", lambda route: route.fulfill(body="", content_type="text/javascript"))
    outcome = await page.evaluate("""async () => {
      const blocked = [];
      document.addEventListener('securitypolicyviolation', (e) => blocked.push(e.blockedURI));
      const urls = ['https://telegram.org/js/telegram-web-app.js', 'https://telegram.org/js/other.js',
                    'https://example.org/x.js'];
      const loaded = await Promise.all(urls.map((src) => new Promise((resolve) => {
        const s = document.createElement('script');
        s.onload = () => resolve(true);
        s.onerror = () => resolve(false);
        s.src = src;
        document.head.appendChild(s);
      })));
      return {loaded, blocked};
    }""")
    assert outcome["loaded"] == [True, False, False]
    assert sorted(outcome["blocked"]) == ["https://example.org/x.js", "https://telegram.org/js/other.js"]
