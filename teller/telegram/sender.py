"""Send a user one Telegram message, within Telegram's limits, with outcomes a caller can act on.

``TelegramSender.send`` waits for a slot (``SendLimiter``: ~1/s per chat, ~30/s overall; waits are
bounded), waits out a 429's ``retry_after`` and tries again (a bounded number of times), and
returns an outcome: ``SENT``; ``BLOCKED`` (403: the user blocked the bot — stop sending to them);
``REJECTED`` (400: e.g. chat not found — retrying cannot help). Anything that may pass with time
(network, 5xx, a long flood wait, a bad token) raises ``TelegramUnavailable``: retry later.

``LogSender`` is the ``telegram.mode = "off"`` stand-in: it logs what would be sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup

from teller.config import Settings
from teller.errors import TelegramUnavailable
from teller.log import get_logger
from teller.telegram.limits import SendLimiter
from teller.telegram.session import make_bot

__all__ = ["SendOutcome", "SendResult", "MessageSender", "TelegramSender", "LogSender", "build_sender",
           "TEXT_LEN_MAX"]

TEXT_LEN_MAX = 4096  # Telegram's limit for one message
RETRIES_MAX = 3  # 429s waited out per send before giving up for now
RETRY_AFTER_MAX_S = 60  # a longer flood wait is the caller's to schedule, not ours to sleep through
SLOT_WAIT_MAX_S = 30.0


class SendOutcome(StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    chat_id: int
    message_id: int | None = None
    detail: str = ""


class MessageSender(Protocol):
    async def send(self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None) -> SendResult:
        ...

    async def close(self) -> None:
        ...


class TelegramSender:
    def __init__(
        self,
        bot: Bot,
        *,
        limiter: SendLimiter | None = None,
        slot_wait_max_s: float = SLOT_WAIT_MAX_S,
        retries_max: int = RETRIES_MAX,
        retry_after_max_s: int = RETRY_AFTER_MAX_S,
    ) -> None:
        self._bot = bot
        self._limiter = limiter or SendLimiter()
        self._slot_wait_max_s = slot_wait_max_s
        self._retries_max = retries_max
        self._retry_after_max_s = retry_after_max_s
        self._log = get_logger(component="telegram-sender")

    async def send(self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None) -> SendResult:
        _check_text(text)
        for _attempt in range(self._retries_max + 1):
            await self._wait_for_slot(chat_id)
            try:
                message = await self._bot.send_message(chat_id=chat_id, text=text, reply_markup=reply_markup)
            except TelegramRetryAfter as exc:
                await self._wait_retry_after(chat_id, exc)
                continue
            except TelegramForbiddenError as exc:
                self._log.info("telegram.blocked", chat_id=chat_id)
                return SendResult(SendOutcome.BLOCKED, chat_id, detail=exc.message)
            except TelegramBadRequest as exc:
                self._log.warning("telegram.rejected", chat_id=chat_id, detail=exc.message)
                return SendResult(SendOutcome.REJECTED, chat_id, detail=exc.message)
            except (AiogramError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise TelegramUnavailable("cannot reach Telegram", error=type(exc).__name__) from exc
            return SendResult(SendOutcome.SENT, chat_id, message_id=message.message_id)
        raise TelegramUnavailable("Telegram keeps answering 429", retries=self._retries_max)

    async def _wait_for_slot(self, chat_id: int) -> None:
        chat_delay_s = self._limiter.reserve_chat(chat_id, wait_max_s=self._slot_wait_max_s)
        if chat_delay_s is None:
            raise TelegramUnavailable("too many messages queued for this chat", retry_after_s=self._slot_wait_max_s)
        await asyncio.sleep(chat_delay_s)
        global_delay_s = self._limiter.reserve_global(wait_max_s=self._slot_wait_max_s)
        if global_delay_s is None:
            raise TelegramUnavailable("Telegram send rate is saturated", retry_after_s=self._slot_wait_max_s)
        await asyncio.sleep(global_delay_s)

    async def _wait_retry_after(self, chat_id: int, exc: TelegramRetryAfter) -> None:
        if exc.retry_after > self._retry_after_max_s:
            raise TelegramUnavailable("Telegram asked to wait too long", retry_after_s=exc.retry_after) from exc
        self._log.info("telegram.retry_after", chat_id=chat_id, retry_after_s=exc.retry_after)
        # Booked on the chat so concurrent sends to it wait too, then waited here.
        self._limiter.defer_chat(chat_id, exc.retry_after)
        await asyncio.sleep(exc.retry_after)

    async def close(self) -> None:
        await self._bot.session.close()


class LogSender:
    """``telegram.mode = "off"``: what would be sent goes to the structured log."""

    def __init__(self) -> None:
        self._log = get_logger(component="telegram-sender", mode="off")

    async def send(self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None) -> SendResult:
        _check_text(text)
        buttons = [b.text for row in reply_markup.inline_keyboard for b in row] if reply_markup else []
        self._log.info("telegram.would_send", chat_id=chat_id, text=text, buttons=buttons)
        return SendResult(SendOutcome.SENT, chat_id)

    async def close(self) -> None:
        return None


def build_sender(settings: Settings) -> MessageSender:
    """The sender ``telegram.mode`` asks for: the log when off, else the Bot API at ``telegram.api_base``."""
    mode = settings.telegram.mode
    if mode == "off":
        return LogSender()
    if mode in ("polling", "webhook"):
        return TelegramSender(make_bot(settings.auth.bot_token, api_base=settings.telegram.api_base))
    raise ValueError(f"telegram.mode must be off, polling or webhook, not {mode!r}")


def _check_text(text: str) -> None:
    if not text or len(text) > TEXT_LEN_MAX:
        raise ValueError(f"message text must be 1..{TEXT_LEN_MAX} characters")  # a bug in the caller
