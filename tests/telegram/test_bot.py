"""/start and /balance through long polling and through the webhook, with the real aiogram Bot.

The update memory here is an in-memory claim; the app's persisted one is tested in
tests/eventsflow/test_bot.py and tests/storage/test_bot_updates.py."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiohttp import web

from teller.errors import ProviderUnavailable
from teller.telegram.bot import UNAVAILABLE_TEXT, build_dispatcher, run_polling
from teller.telegram.botapi_server import BotApiServer
from teller.telegram.webhook import mount_webhook, set_webhook
from tests.fixtures.common import free_port
from tests.fixtures.telegram import (
    BOT_TOKEN,
    HOSTILE_SECRET_HEADERS,
    hostile_chats_get_no_answer,
    post_raw,
    redelivered_update_answered_once,
)

MINI_APP_URL = "https://wallet.example.org/app"
SECRET = "s3cret_webhook-path-0123456789"          # the path secret
HEADER_SECRET = "s3cret_webhook-header-9876543210"  # X-Telegram-Bot-Api-Secret-Token
BALANCES = {42: [("USDT", "ethereum", "10.5", "2"), ("IRT", None, "150000.5", "0")]}


async def fake_balances(telegram_id: int) -> list[tuple[str, str | None, str, str]]:
    if telegram_id == 500:
        raise ProviderUnavailable()
    return BALANCES.get(telegram_id, [])


class SeenUpdates:
    """An in-memory claim_update: True the first time an id is seen."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    async def __call__(self, update_id: int) -> bool:
        if update_id in self.seen:
            return False
        self.seen.add(update_id)
        return True


def dispatcher_for_tests(*, mini_app_url: str = MINI_APP_URL) -> Any:
    return build_dispatcher(balances_for=fake_balances, claim_update=SeenUpdates(), mini_app_url=mini_app_url)


def _web_app_url(message: dict) -> str:
    return message["reply_markup"]["inline_keyboard"][0][0]["web_app"]["url"]


async def _converse(botapi: BotApiServer) -> None:
    await botapi.inject_message(42, "/start", username="alice")
    [start] = await botapi.wait_for_messages(1, chat_id=42)
    assert start["text"].startswith("👋 Welcome to Teller") and _web_app_url(start) == MINI_APP_URL
    await botapi.inject_message(42, "/balance")
    balance = (await botapi.wait_for_messages(2, chat_id=42))[1]
    assert balance["text"] == ("💰 Your balances:\n• 10.5 USDT on ethereum (+2 held for withdrawals)\n"
                               "• 150,000.5 tomans")
    await botapi.inject_message(7, "/balance")  # another user sees their own (empty) list
    [other] = await botapi.wait_for_messages(1, chat_id=7)
    assert "no balances" in other["text"]


@pytest.fixture
async def polling(botapi: BotApiServer, tg_bot: Bot) -> AsyncIterator[None]:
    dispatcher = dispatcher_for_tests()
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
    dispatcher = dispatcher_for_tests(mini_app_url="")
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
    assert mount_webhook(app, bot=tg_bot, dispatcher=dispatcher_for_tests(), path_secret=SECRET,
                         header_secret=HEADER_SECRET) == "/telegram/webhook/{secret}"
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_start_and_balance_by_webhook(botapi: BotApiServer, tg_bot: Bot, teller_app: str, log_stream) -> None:
    url = await set_webhook(tg_bot, public_base_url=teller_app, path_secret=SECRET, header_secret=HEADER_SECRET)
    assert url == f"{teller_app}/telegram/webhook/{SECRET}"
    [registered] = botapi.calls_of("setWebhook")
    assert registered.params["secret_token"] == HEADER_SECRET and HEADER_SECRET not in registered.params["url"]
    await _converse(botapi)
    assert not botapi.calls_of("getUpdates")
    for secret in (SECRET, HEADER_SECRET, BOT_TOKEN):
        assert secret not in log_stream.getvalue()


@pytest.mark.parametrize(("path_secret", "header", "body", "status"), [
    ("wrong-secret-0123456789abcdef", HEADER_SECRET, b'{"update_id": 1}', 404),   # path secret wrong
    (SECRET, "wrong", b'{"update_id": 1}', 401),                                  # header secret wrong
    (SECRET, SECRET, b'{"update_id": 1}', 401),                                   # the path secret as header
    (SECRET, HEADER_SECRET, b"not json", 400),
    (SECRET, HEADER_SECRET, b"[1, 2]", 400),
    (SECRET, HEADER_SECRET, b'{"message": {}}', 400),
    (SECRET, HEADER_SECRET, b"x" * (300 * 1024), 413),
])
async def test_webhook_refuses_bad_requests(teller_app: str, path_secret: str, header: str, body: bytes,
                                            status: int) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{teller_app}/telegram/webhook/{path_secret}", data=body,
                             headers={"X-Telegram-Bot-Api-Secret-Token": header,
                                      "Content-Type": "application/json"}) as resp:
            assert resp.status == status


def test_webhook_needs_real_and_distinct_secrets(tg_bot: Bot) -> None:
    dispatcher = dispatcher_for_tests()
    for secret in ("", "short", "has spaces in it, which Telegram refuses"):
        with pytest.raises(ValueError, match="webhook_path_secret"):
            mount_webhook(web.Application(), bot=tg_bot, dispatcher=dispatcher, path_secret=secret,
                          header_secret=HEADER_SECRET)
        with pytest.raises(ValueError, match="telegram.webhook_secret must"):
            mount_webhook(web.Application(), bot=tg_bot, dispatcher=dispatcher, path_secret=SECRET,
                          header_secret=secret)
    with pytest.raises(ValueError, match="must differ") as refused:
        mount_webhook(web.Application(), bot=tg_bot, dispatcher=dispatcher, path_secret=SECRET, header_secret=SECRET)
    assert SECRET not in str(refused.value)


async def test_hostile_chats_get_no_answer_by_polling(botapi: BotApiServer, log_stream: Any,
                                                       polling: None) -> None:
    await hostile_chats_get_no_answer(botapi, log_stream, victim=42, attacker=666)


async def test_hostile_chats_get_no_answer_by_webhook(botapi: BotApiServer, tg_bot: Bot, log_stream: Any,
                                                       teller_app: str) -> None:
    await set_webhook(tg_bot, public_base_url=teller_app, path_secret=SECRET, header_secret=HEADER_SECRET)
    await hostile_chats_get_no_answer(botapi, log_stream, victim=42, attacker=666)


async def test_redelivered_update_is_answered_once_by_webhook(botapi: BotApiServer, tg_bot: Bot, log_stream: Any,
                                                              teller_app: str) -> None:
    await set_webhook(tg_bot, public_base_url=teller_app, path_secret=SECRET, header_secret=HEADER_SECRET)
    update = await botapi.inject_message(42, "/balance")
    await botapi.wait_for_messages(1, chat_id=42)
    await botapi.redeliver(update)  # Telegram timed out waiting for our answer
    await redelivered_update_answered_once(botapi, log_stream, update, chat_id=42, sentinel_chat_id=7)


async def test_redelivered_update_is_answered_once_by_a_new_poller(botapi: BotApiServer, tg_bot: Bot,
                                                                   log_stream: Any) -> None:
    seen = SeenUpdates()  # what the store keeps across a restart
    update = await botapi.inject_message(42, "/balance")
    for run in range(2):  # the second poller starts without an offset, as after a restart
        dispatcher = build_dispatcher(balances_for=fake_balances, claim_update=seen)
        task = asyncio.create_task(run_polling(tg_bot, dispatcher, polling_timeout_s=1))
        try:
            await botapi.wait_for_messages(1, chat_id=42)
            if run == 1:
                await redelivered_update_answered_once(botapi, log_stream, update, chat_id=42, sentinel_chat_id=7)
        finally:
            await dispatcher.stop_polling()
            await task
        await botapi.redeliver(update)  # the first poller died before confirming it


@pytest.mark.parametrize("header", HOSTILE_SECRET_HEADERS)
async def test_bad_secret_header_is_401_without_traceback(teller_app: str, botapi: BotApiServer, log_stream: Any,
                                                          header: bytes | None) -> None:
    status, _body = await post_raw(teller_app, f"/telegram/webhook/{SECRET}", secret_header=header,
                                   body=b'{"update_id": 1, "message": {}}')
    assert status == 401
    assert "Traceback" not in log_stream.getvalue() and '"level": "error"' not in log_stream.getvalue()
    assert botapi.calls == deque()
