"""Build aiogram's ``Bot`` pointed at ``telegram.api_base`` (the real Bot API or the local one)."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

__all__ = ["make_bot", "REQUEST_TIMEOUT_S"]

# aiogram's default is 60 s; a notification that cannot go out in 10 s is retried later instead.
REQUEST_TIMEOUT_S = 10


def make_bot(token: str, *, api_base: str, timeout_s: int = REQUEST_TIMEOUT_S) -> Bot:
    """A Bot on its own aiohttp session; close it with ``await bot.session.close()``.

    No parse mode: texts go out as plain text, so nothing a user typed can turn into markup.
    """
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base.rstrip("/")), timeout=timeout_s)
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=None))
