"""/start and /balance through Teller's own webhook route and through supervised long polling."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.storage import chain_account, user_account
from teller.telegram.bot import set_webhook
from teller.telegram.botapi_server import BotApiServer
from teller.telegram.session import make_bot
from tests.eventsflow.helpers import USDT, running_teller, settings_for_tests

MINI_APP_URL = "https://wallet.example.org/app"
SECRET = "webhook_secret-0123456789abcdef"
TG = 6161


async def _fund(store: Any) -> None:
    user = await store.users.get_or_create(telegram_id=TG)
    await store.ledger.transfer(debit=chain_account("ethereum", USDT), credit=user_account(user.id, USDT),
                                asset=USDT, amount=1_234_500_000, key="deposit:bot-test")


async def _converse(botapi: BotApiServer) -> None:
    await botapi.inject_message(TG, "/start")
    [start] = await botapi.wait_for_messages(1, chat_id=TG)
    assert start["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"] == MINI_APP_URL
    await botapi.inject_message(TG, "/balance")
    balance = (await botapi.wait_for_messages(2, chat_id=TG))[1]
    assert balance["text"] == "💰 Your balances:\n• 1,234.5 USDT on ethereum"
    await botapi.inject_message(TG + 1, "/balance")  # a stranger has nothing
    [other] = await botapi.wait_for_messages(1, chat_id=TG + 1)
    assert "no balances" in other["text"]


async def test_start_and_balance_by_polling(store: Any, botapi: BotApiServer) -> None:
    await _fund(store)
    async with running_teller(store, botapi=botapi, telegram={"mode": "polling", "mini_app_url": MINI_APP_URL}):
        await _converse(botapi)
        assert botapi.calls_of("getUpdates")


@pytest.fixture
async def webhook_teller(store: Any, botapi: BotApiServer) -> Any:
    telegram = {"mode": "webhook", "webhook_secret": SECRET, "mini_app_url": MINI_APP_URL}
    async with running_teller(store, botapi=botapi, telegram=telegram) as teller:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            yield client


async def test_start_and_balance_by_webhook(store: Any, botapi: BotApiServer, webhook_teller: TestClient) -> None:
    await _fund(store)
    bot = make_bot(settings_for_tests().auth.bot_token, api_base=botapi.api_base)
    try:
        await set_webhook(bot, public_base_url=str(webhook_teller.make_url("")), secret=SECRET)
    finally:
        await bot.session.close()
    await _converse(botapi)
    assert not botapi.calls_of("getUpdates")
    doc = await (await webhook_teller.get("/api/v1/openapi.json")).json()
    assert doc["paths"]["/telegram/webhook/{secret}"]["post"]["tags"] == ["telegram"]


@pytest.mark.parametrize(("path_secret", "header", "body", "status"), [
    ("wrong-secret-0123456789abcdef", SECRET, b'{"update_id": 1}', 404),
    (SECRET, "forged", b'{"update_id": 1}', 401),
    (SECRET, SECRET, b"not json", 400),
    (SECRET, SECRET, b"[1, 2]", 400),
    (SECRET, SECRET, b'{"update_id": -1e999}', 400),
    (SECRET, SECRET, b"x" * (300 * 1024), 413),
])
async def test_webhook_refuses_bad_requests_without_effect(store: Any, botapi: BotApiServer,
                                                           webhook_teller: TestClient, path_secret: str,
                                                           header: str, body: bytes, status: int) -> None:
    resp = await webhook_teller.post(f"/telegram/webhook/{path_secret}", data=body,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": header,
                                              "Content-Type": "application/json"})
    assert resp.status == status
    assert botapi.sent_messages() == [] and await store.fetch_all("SELECT id FROM users") == []
