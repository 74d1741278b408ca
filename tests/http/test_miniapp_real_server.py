"""The Mini App page served by the real Teller, in Chromium: sign in with init data the test signs
with the bot token, see the balance the test credited through the ledger, and the user's own
deposit address derived by the signer."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from teller.storage import chain_account, user_account
from tests.fixtures.browser import PHONE_VIEWPORT, TEST_BOT_TOKEN, TEST_TELEGRAM_USER, build_init_data
from tests.fixtures.chain import DevNet
from tests.fixtures.http import settings_for_tests
from tests.fixtures.teller_app import served_teller
from tests.http.test_miniapp_page import fake_telegram_script

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SIGNER_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"


async def test_real_server_page_shows_the_ledger_balance_and_the_signer_address(
        chromium: Any, store: Any, devnet: DevNet, store_backend: str) -> None:
    chain = devnet.chain_settings(name="ethereum")
    settings = settings_for_tests(
        auth={"bot_token": TEST_BOT_TOKEN}, signer={"mnemonic": SIGNER_MNEMONIC},
        chains=[{"name": "ethereum", "chain_id": chain.chain_id, "rpc_url": chain.rpc_url, "confirmations": 3,
                 "poll_interval_s": 0.5,
                 "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
                 "tokens": [{"symbol": "USDT", "contract": devnet.token, "decimals": 6,
                             "min_withdrawal": "1", "withdrawal_fee": "0.5"}]}],
    )
    async with served_teller(settings, store) as (_teller, port):
        user = await store.users.get_or_create(telegram_id=TEST_TELEGRAM_USER["id"], first_name="Alice")
        await store.ledger.transfer(debit=chain_account("ethereum", "ethereum:USDT"),
                                    credit=user_account(user.id, "ethereum:USDT"), asset="ethereum:USDT",
                                    amount=10_500_000, key="test:real-page:credit")
        context = await chromium.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, is_mobile=True)
        page = await context.new_page()
        init_data = build_init_data(bot_token=TEST_BOT_TOKEN, user=TEST_TELEGRAM_USER)
        await page.add_init_script(script=fake_telegram_script(init_data))
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.wait_for_selector("#screen-wallet:not([hidden]) .asset-row")
        usdt = page.locator('.asset-row[data-asset="USDT"]')
        assert await usdt.locator(".balance-available").inner_text() == "10.5"
        await page.wait_for_selector("#deposit-qr svg")
        shown = (await page.locator("#deposit-address").inner_text()).replace("\n", "").replace(" ", "")
        row = await store.fetch_one("SELECT address FROM deposit_addresses WHERE user_id = ? AND chain = ?",
                                    user.id, "ethereum")
        assert row is not None and shown.lower() == row["address"].lower()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"miniapp-real-{store_backend}.png"), full_page=True)
        await context.close()

