"""The sender against the local Bot API with the real aiogram Bot: limits, 429, 403, outages."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiogram import Bot
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from teller.config import settings_from_mapping
from teller.errors import TelegramUnavailable
from teller.telegram.botapi_server import BotApiServer
from teller.telegram.limits import SendLimiter
from teller.telegram.sender import LogSender, SendOutcome, TelegramSender, build_sender
from teller.telegram.session import make_bot
from tests.fixtures.common import free_port
from tests.fixtures.telegram import BOT_TOKEN


def _sender(bot: Bot, **kw) -> TelegramSender:
    # Roomy limits so the tests exercise behaviour, not the clock.
    return TelegramSender(bot, limiter=SendLimiter(per_chat_interval_s=0.0, global_per_s=1000, global_burst=100), **kw)


async def test_send_message_reaches_the_server(botapi: BotApiServer, tg_bot: Bot) -> None:
    markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Open", url="https://example.org")]])
    result = await _sender(tg_bot).send(42, "✅ Deposit credited: 12.5 USDT on ethereum", reply_markup=markup)
    assert result.outcome is SendOutcome.SENT and result.message_id is not None
    [sent] = botapi.sent_messages()
    assert sent["chat_id"] == 42 and sent["text"] == "✅ Deposit credited: 12.5 USDT on ethereum"
    assert sent["reply_markup"]["inline_keyboard"][0][0]["text"] == "Open"
    assert "parse_mode" not in sent  # plain text: nothing in a text can become markup


async def test_429_is_waited_out_then_sent(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.fail(7, status=429, retry_after_s=1)
    result = await _sender(tg_bot).send(7, "hello")
    assert result.outcome is SendOutcome.SENT
    attempts = botapi.calls_of("sendMessage")
    assert len(attempts) == 2 and attempts[0].params["_failed"] == 429
    assert len(botapi.sent_messages(7)) == 1


async def test_403_is_blocked_and_not_retried(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.block(9)
    result = await _sender(tg_bot).send(9, "hello")
    assert result.outcome is SendOutcome.BLOCKED
    assert "blocked" in result.detail
    assert len(botapi.calls_of("sendMessage")) == 1


async def test_400_is_rejected_not_retried(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.fail(5, status=400)
    result = await _sender(tg_bot).send(5, "hello")
    assert result.outcome is SendOutcome.REJECTED and len(botapi.calls_of("sendMessage")) == 1


async def test_server_error_is_telegram_unavailable(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.fail(5, status=500)
    with pytest.raises(TelegramUnavailable):
        await _sender(tg_bot).send(5, "hello")


async def test_too_long_flood_wait_is_left_to_the_caller(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.fail(3, status=429, retry_after_s=3600)
    with pytest.raises(TelegramUnavailable) as info:
        await _sender(tg_bot).send(3, "hello")
    assert info.value.details["retry_after_s"] == 3600


async def test_endless_429_gives_up_after_bounded_retries(botapi: BotApiServer, tg_bot: Bot) -> None:
    botapi.fail(3, status=429, retry_after_s=1, times=100)
    with pytest.raises(TelegramUnavailable):
        await _sender(tg_bot, retries_max=1).send(3, "hello")
    assert len(botapi.calls_of("sendMessage")) == 2


async def test_closed_port_is_telegram_unavailable() -> None:
    bot = make_bot(BOT_TOKEN, api_base=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(TelegramUnavailable):
            await asyncio.wait_for(_sender(bot).send(1, "hello"), timeout=30)
    finally:
        await bot.session.close()


def test_sends_to_one_chat_are_spaced_a_second_apart() -> None:
    clock = [0.0]
    limiter = SendLimiter(per_chat_interval_s=1.0, global_per_s=30, global_burst=30, clock=lambda: clock[0])
    # Booked, not slept: the limiter alone says two sends to one chat are a second apart.
    assert limiter.reserve_chat(1, wait_max_s=5) == 0
    assert limiter.reserve_chat(1, wait_max_s=5) == pytest.approx(1.0)
    assert limiter.reserve_chat(2, wait_max_s=5) == 0  # another user is not held up
    assert limiter.reserve_chat(1, wait_max_s=0.5) is None  # over the bound: nothing booked
    assert limiter.reserve_chat(1, wait_max_s=5) == pytest.approx(2.0)
    limiter.defer_chat(3, 7.0)  # a 429 for chat 3
    assert limiter.reserve_chat(3, wait_max_s=10) == pytest.approx(7.0)


def test_global_bucket_allows_a_burst_then_30_per_second() -> None:
    clock = [0.0]
    limiter = SendLimiter(per_chat_interval_s=1.0, global_per_s=30, global_burst=30, clock=lambda: clock[0])
    waits = [limiter.reserve_global(wait_max_s=60) for _ in range(90)]
    assert waits[:30] == [0.0] * 30
    assert waits[30] == pytest.approx(1 / 30) and waits[89] == pytest.approx(2.0)
    assert limiter.reserve_global(wait_max_s=1.0) is None
    clock[0] = 10.0  # the bucket refills while idle, up to its burst
    assert [limiter.reserve_global(wait_max_s=60) for _ in range(30)] == [0.0] * 30


async def test_log_sender_writes_the_message_to_the_log(log_stream) -> None:
    result = await LogSender().send(42, "✅ Deposit credited: 12.5 USDT on ethereum")
    assert result.outcome is SendOutcome.SENT
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line.strip()]
    [line] = [entry for entry in lines if entry["event"] == "telegram.would_send"]
    assert line["chat_id"] == 42 and line["text"] == "✅ Deposit credited: 12.5 USDT on ethereum"


async def test_build_sender_follows_the_mode(botapi: BotApiServer) -> None:
    auth = {"bot_token": BOT_TOKEN, "jwt_secret": "x" * 32, "ops_token": "ops"}
    off = build_sender(settings_from_mapping({"auth": auth}))
    assert isinstance(off, LogSender)
    on = build_sender(settings_from_mapping({"auth": auth, "telegram": {"mode": "polling", "api_base": botapi.api_base}}))
    try:
        assert isinstance(on, TelegramSender)
        assert (await on.send(11, "hi")).outcome is SendOutcome.SENT
    finally:
        await on.close()
    assert botapi.sent_messages(11)[0]["text"] == "hi"
