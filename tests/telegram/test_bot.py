"""/start and /balance through long polling and through the webhook, with the real aiogram Bot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot
from aiohttp import web

from teller.errors import ProviderUnavailable
from teller.telegram.bot import UNAVAILABLE_TEXT, build_dispatcher, mount_webhook, run_polling, set_webhook
from teller.telegram.botapi_server import BotApiServer
from tests.fixtures.common import free_port
from tests.fixtures.telegram import BOT_TOKEN

MINI_APP_URL = "https://wallet.example.org/app"
SECRET = "s3cret_webhook-path-0123456789"
BALANCES = {42: [("USDT", "ethereum", "10.5", "2"), ("IRT", None, "1500000", "0")]}


async def fake_balances(telegram_id: int) -> list[tuple[str, str | None, str, str]]:
    if telegram_id == 500:
        raise ProviderUnavailable()
    return BALANCES.get(telegram_id, [])


def _web_app_url(message: dict) -> str:
    return message["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"]


async def _converse(botapi: BotApiServer) -> None:
    await botapi.inject_message(42, "/start", username="alice")
    [start] = await botapi.wait_for_messages(1, chat_id=42)
    assert start["text"].startswith("👋 Welcome to Teller") and _web_app_url(start) == MINI_APP_URL
    await botapi.inject_message(42, "/balance")
    balance = (await botapi.wait_for_messages(2, chat_id=42))[1]
    assert balance["text"] == ("💰 Your balances:\n• 10.5 USDT on ethereum (+2 held for withdrawals)\n"
                               "• 1,500,000 IRT")
    await botapi.inject_message(7, "/balance")  # another user sees their own (empty) list
    [other] = await botapi.wait_for_messages(1, chat_id=7)
    assert "no balances" in other["text"]


@pytest.fixture
async def polling(botapi: BotApiServer, tg_bot: Bot) -> AsyncIterator[None]:
    dispatcher = build_dispatcher(balances_for=fake_balances, mini_app_url=MINI_APP_URL)
    task = asyncio.create_task(run_polling(tg_bot, dispatcher, polling_timeout_s=1))
    yield
    await dispatcher.stop_polling()
    await task


async def test_start_and_balance_by_polling(botapi: BotApiServer, log_stream, polling: None) -> None:
    await _converse(botapi)
    assert botapi.calls_of("getUpdates")
    assert BOT_TOKEN not in log_stream.getvalue() and BOT_TOKEN.split(":")[1] not in log_stream.getvalue()


async def test_balance_unavailable_is_a_polite_answer(botapi: BotApiServer, polling: None) -> None:
    await botapi.inject_message(500, "/balance")
    [reply] = await botapi.wait_for_messages(1, chat_id=500)
    assert reply["text"] == UNAVAILABLE_TEXT


async def test_start_without_mini_app_url_is_plain_text(botapi: BotApiServer, tg_bot: Bot) -> None:
    dispatcher = build_dispatcher(balances_for=fake_balances)
    task = asyncio.create_task(run_polling(tg_bot, dispatcher, polling_timeout_s=1))
    try:
        await botapi.inject_message(42, "/start")
        [reply] = await botapi.wait_for_messages(1, chat_id=42)
        assert "reply_markup" not in reply and "/balance" in reply["text"]
    finally:
        await dispatcher.stop_polling()
        await task


@pytest.fixture
async def teller_app(tg_bot: Bot) -> AsyncIterator[str]:
    """A stand-in for Teller's own aiohttp app with the webhook route mounted; yields its base URL."""
    app = web.Application()
    dispatcher = build_dispatcher(balances_for=fake_balances, mini_app_url=MINI_APP_URL)
    assert mount_webhook(app, bot=tg_bot, dispatcher=dispatcher, secret=SECRET) == "/telegram/webhook/{secret}"
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_start_and_balance_by_webhook(botapi: BotApiServer, tg_bot: Bot, teller_app: str, log_stream) -> None:
    url = await set_webhook(tg_bot, public_base_url=teller_app, secret=SECRET)
    assert url == f"{teller_app}/telegram/webhook/{SECRET}"
    await _converse(botapi)
    assert not botapi.calls_of("getUpdates")
    assert SECRET not in log_stream.getvalue() and BOT_TOKEN not in log_stream.getvalue()


@pytest.mark.parametrize(("path_secret", "header", "body", "status"), [
    ("wrong-secret-0123456789abcdef", SECRET, b'{"update_id": 1}', 404),   # path secret wrong
    (SECRET, "wrong", b'{"update_id": 1}', 401),                           # header secret wrong
    (SECRET, SECRET, b"not json", 400),
    (SECRET, SECRET, b"[1, 2]", 400),
    (SECRET, SECRET, b'{"message": {}}', 400),
    (SECRET, SECRET, b"x" * (300 * 1024), 413),
])
async def test_webhook_refuses_bad_requests(teller_app: str, path_secret: str, header: str, body: bytes,
                                            status: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{teller_app}/telegram/webhook/{path_secret}", data=body,
                             headers={"X-Telegram-Bot-Api-Secret-Token": header,
                                      "Content-Type": "application/json"}) as resp:
            assert resp.status == status


def test_webhook_needs_a_real_secret(tg_bot: Bot) -> None:
    dispatcher = build_dispatcher(balances_for=fake_balances)
    for secret in ("", "short", "has spaces in it, which Telegram refuses"):
        with pytest.raises(ValueError):
            mount_webhook(web.Application(), bot=tg_bot, dispatcher=dispatcher, secret=secret)
