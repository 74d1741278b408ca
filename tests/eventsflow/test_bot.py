"""/start and /balance through Teller's own webhook route and through supervised long polling: only in the
sender's own private chat, once per update id (across restarts, on both backends), behind both secrets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.storage import chain_account, open_store, user_account
from teller.telegram.botapi_server import BotApiServer
from teller.telegram.session import make_bot
from teller.telegram.webhook import WEBHOOK_BODY_BYTES_MAX, set_webhook
from tests.eventsflow.helpers import USDT, running_teller, settings_for_tests
from tests.fixtures.telegram import (
    HOSTILE_SECRET_HEADERS,
    hostile_chats_get_no_answer,
    post_raw,
    redelivered_update_answered_once,
)

MINI_APP_URL = "https://wallet.example.org/app"
SECRET = "webhook_secret-0123456789abcdef"          # the header secret
PATH_SECRET = "webhook_path-secret-fedcba9876543210"
WEBHOOK = {"mode": "webhook", "webhook_secret": SECRET, "webhook_path_secret": PATH_SECRET,
           "mini_app_url": MINI_APP_URL}
POLLING = {"mode": "polling", "mini_app_url": MINI_APP_URL}
SERVER_BODY_MAX = settings_for_tests().server.body_size_max_bytes
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
    async with running_teller(store, botapi=botapi, telegram=POLLING):
        await _converse(botapi)
        assert botapi.calls_of("getUpdates")


@asynccontextmanager
async def _webhook_teller(store: Any, botapi: BotApiServer) -> AsyncIterator[TestClient]:
    """Teller in webhook mode on a loopback port, registered with the local Bot API."""
    async with running_teller(store, botapi=botapi, telegram=WEBHOOK) as teller, \
            TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
        bot = make_bot(settings_for_tests().auth.bot_token, api_base=botapi.api_base)
        try:
            url = await set_webhook(bot, public_base_url=str(client.make_url("")), path_secret=PATH_SECRET,
                                    header_secret=SECRET)
        finally:
            await bot.session.close()
        assert url.endswith(f"/telegram/webhook/{PATH_SECRET}") and SECRET not in url
        yield client


@pytest.fixture
async def webhook_teller(store: Any, botapi: BotApiServer) -> AsyncIterator[TestClient]:
    async with _webhook_teller(store, botapi) as client:
        yield client


async def test_start_and_balance_by_webhook(store: Any, botapi: BotApiServer, webhook_teller: TestClient) -> None:
    await _fund(store)
    await _converse(botapi)
    assert not botapi.calls_of("getUpdates")
    doc = await (await webhook_teller.get("/api/v1/openapi.json")).json()
    assert doc["paths"]["/telegram/webhook/{secret}"]["post"]["tags"] == ["telegram"]


@pytest.mark.parametrize(("path_secret", "header", "body", "status"), [
    ("wrong-secret-0123456789abcdef", SECRET, b'{"update_id": 1}', 404),
    (SECRET, SECRET, b'{"update_id": 1}', 404),                  # the header secret is not the path
    (PATH_SECRET, "forged", b'{"update_id": 1}', 401),
    (PATH_SECRET, PATH_SECRET, b'{"update_id": 1}', 401),        # nor the path secret the header
    (PATH_SECRET, SECRET, b"not json", 400),
    (PATH_SECRET, SECRET, b"[1, 2]", 400),
    (PATH_SECRET, SECRET, b'{"update_id": -1e999}', 400),
    (PATH_SECRET, SECRET, b"x" * (WEBHOOK_BODY_BYTES_MAX + 1), 413),
])
async def test_webhook_refuses_bad_requests_without_effect(store: Any, botapi: BotApiServer,
                                                           webhook_teller: TestClient, path_secret: str,
                                                           header: str, body: bytes, status: int) -> None:
    resp = await webhook_teller.post(f"/telegram/webhook/{path_secret}", data=body,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": header,
                                              "Content-Type": "application/json"})
    assert resp.status == status
    assert botapi.sent_messages() == [] and await store.fetch_all("SELECT id FROM users") == []


async def test_hostile_chats_get_no_answer_by_polling(store: Any, botapi: BotApiServer, log_stream: Any) -> None:
    await _fund(store)
    async with running_teller(store, botapi=botapi, telegram=POLLING):
        await hostile_chats_get_no_answer(botapi, log_stream, victim=TG, attacker=TG + 66)


async def test_hostile_chats_get_no_answer_by_webhook(store: Any, botapi: BotApiServer, log_stream: Any,
                                                       webhook_teller: TestClient) -> None:
    await _fund(store)
    await hostile_chats_get_no_answer(botapi, log_stream, victim=TG, attacker=TG + 66)


async def test_redelivered_update_is_answered_once_by_webhook(store: Any, botapi: BotApiServer, log_stream: Any,
                                                              webhook_teller: TestClient) -> None:
    update = await botapi.inject_message(TG, "/balance")
    await botapi.wait_for_messages(1, chat_id=TG)
    await botapi.redeliver(update)  # Telegram timed out waiting for our answer and posts it again
    await redelivered_update_answered_once(botapi, log_stream, update, chat_id=TG, sentinel_chat_id=TG + 1)


@pytest.mark.parametrize("telegram", ["webhook", "polling"])
async def test_redelivered_update_is_answered_once_across_a_restart(store_url: str, botapi: BotApiServer,
                                                                    log_stream: Any, telegram: str) -> None:
    """The first Teller answers and stops (its store closed); Telegram then delivers the update again to
    a second Teller on a store opened anew: a poller that never confirmed the offset, a webhook retry."""
    update: dict[str, Any] = {}
    for run in range(2):
        store = await open_store(store_url)
        try:
            async with _bot_running(store, botapi, telegram):
                if run == 0:
                    update = await botapi.inject_message(TG, "/balance")
                    await botapi.wait_for_messages(1, chat_id=TG)
                else:
                    await botapi.redeliver(update)
                    await redelivered_update_answered_once(botapi, log_stream, update, chat_id=TG,
                                                           sentinel_chat_id=TG + 1)
        finally:
            await store.close()


@asynccontextmanager
async def _bot_running(store: Any, botapi: BotApiServer, telegram: str) -> AsyncIterator[None]:
    if telegram == "webhook":
        async with _webhook_teller(store, botapi):
            yield
    else:
        async with running_teller(store, botapi=botapi, telegram=POLLING):
            yield


@pytest.mark.parametrize("header", HOSTILE_SECRET_HEADERS)
async def test_bad_secret_header_is_401_without_traceback(store: Any, botapi: BotApiServer, log_stream: Any,
                                                          webhook_teller: TestClient, header: bytes | None) -> None:
    update = json.dumps({"update_id": 10**6, "message": {}}).encode()
    status, body = await post_raw(str(webhook_teller.make_url("")).rstrip("/"), f"/telegram/webhook/{PATH_SECRET}",
                                  secret_header=header, body=update)
    assert status == 401, body
    logs = log_stream.getvalue()
    assert "Traceback" not in logs and '"level": "error"' not in logs and "http.unhandled" not in logs
    assert botapi.sent_messages() == []


def _largest_update(update_id: int) -> bytes:
    """An Update near the largest Telegram sends us: /balance with 4096 units of escaped text, 100 entities,
    replying to a message as large, under an inline keyboard of 100 buttons: more than the server's 64 KB."""
    def message(message_id: int, text: str) -> dict[str, Any]:
        return {"message_id": message_id, "date": 1_700_000_000, "text": text,
                "from": {"id": TG, "is_bot": False, "first_name": "Tester"},
                "chat": {"id": TG, "type": "private", "first_name": "Tester"},
                "entities": [{"type": "bot_command", "offset": 0, "length": 8}] + [
                    {"type": "text_link", "offset": 9 + i, "length": 1, "url": f"https://example.org/{i:040d}"}
                    for i in range(99)],
                "reply_markup": {"inline_keyboard": [[{"text": f"button {row}-{col}", "callback_data": "x" * 64}
                                                      for col in range(8)] for row in range(12)]}}

    text = "/balance " + "\u0001" * 4087
    replied = message(1, "\u0001" * 4096)
    body = json.dumps({"update_id": update_id, "message": {**message(2, text), "reply_to_message": replied}})
    return body.encode()


async def test_a_large_update_within_the_webhook_bound_is_answered(store: Any, botapi: BotApiServer,
                                                                   webhook_teller: TestClient) -> None:
    await _fund(store)
    body = _largest_update(10**6)
    assert SERVER_BODY_MAX < len(body) <= WEBHOOK_BODY_BYTES_MAX
    resp = await webhook_teller.post(f"/telegram/webhook/{PATH_SECRET}", data=body,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                              "Content-Type": "application/json"})
    assert resp.status == 200
    [reply] = await botapi.wait_for_messages(1, chat_id=TG)
    assert reply["text"] == "💰 Your balances:\n• 1,234.5 USDT on ethereum"


async def test_a_chunked_body_above_the_webhook_bound_is_413(store: Any, botapi: BotApiServer,
                                                             webhook_teller: TestClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(WEBHOOK_BODY_BYTES_MAX // 1024 + 1):
            yield b" " * 1024

    resp = await webhook_teller.post(f"/telegram/webhook/{PATH_SECRET}", data=chunks(),
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                              "Content-Type": "application/json"})
    assert resp.status == 413
    assert botapi.sent_messages() == []


async def test_other_routes_keep_the_server_body_limit(webhook_teller: TestClient) -> None:
    resp = await webhook_teller.post("/api/v1/auth/telegram", data=b"x" * (SERVER_BODY_MAX + 1))
    assert resp.status == 413
