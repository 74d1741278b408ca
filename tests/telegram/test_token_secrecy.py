"""The bot token rides in every Bot API URL (``/bot<token>/sendMessage``): never in an error or a log line.

A local aiohttp server on loopback plays a failing Bot API: 500, 401, or the connection closed mid-request.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from teller.errors import TelegramUnavailable
from teller.log import get_logger
from teller.telegram.limits import SendLimiter
from teller.telegram.sender import TelegramSender
from teller.telegram.session import make_bot
from tests.fixtures.failing_server import hang_up, serving

HANG_GUARD_S = 30  # not a timing assertion: only keeps a broken test from hanging the run
TOKEN = "123456:SECRETtokenSECRETtokenSECRETtoken"
SECRETS = ("SECRETtoken", "123456:")


class BotApi:
    def __init__(self) -> None:
        self.mode = "500"
        self.url = ""

    async def answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "close":
            return hang_up(request)
        status = int(self.mode)
        return web.json_response({"ok": False, "error_code": status, "description": f"failed at {request.url}"},
                                 status=status)


@pytest.fixture
async def bot_api() -> AsyncIterator[BotApi]:
    api = BotApi()
    async with serving(api.answer) as port:
        api.url = f"http://127.0.0.1:{port}"
        yield api


@pytest.mark.parametrize("mode", ["500", "401", "close"])
async def test_a_failing_bot_api_leaks_no_token(bot_api: BotApi, log_stream: io.StringIO, mode: str) -> None:
    bot_api.mode = mode
    bot = make_bot(TOKEN, api_base=bot_api.url, timeout_s=5)
    sender = TelegramSender(bot, limiter=SendLimiter(per_chat_interval_s=0.0, global_per_s=1000, global_burst=100),
                            retries_max=0)
    try:
        with pytest.raises(TelegramUnavailable) as info:
            await asyncio.wait_for(sender.send(42, "hello"), HANG_GUARD_S)
    finally:
        await bot.session.close()
    error = info.value
    get_logger(actor="/teller/notifier").error("actor crashed", error=repr(error), exc_info=error)
    for text in (error.message, str(error), repr(error), repr(error.details)):
        assert not any(secret in text for secret in SECRETS), text
    logged = log_stream.getvalue()
    assert "actor crashed" in logged
    assert not any(secret in logged for secret in SECRETS), logged
