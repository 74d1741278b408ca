"""The bot: an aiogram Dispatcher answering ``/start`` and ``/balance``, by long polling or webhook.

The bot knows nothing of storage: ``/balance`` calls an injected ``balances_for(telegram_id)``
that returns rows of (asset, chain or None, available, held) in display units. ``/start`` offers a
button that opens the Mini App (``telegram.mini_app_url``), or plain text when none is set.

Long polling (dev): ``run_polling``. Webhook (production): ``mount_webhook`` adds
``POST /telegram/webhook/{secret}`` to Teller's aiohttp app; a wrong path secret is a 404 (the
route does not exist for a guesser) and, as Telegram sends it, the
``X-Telegram-Bot-Api-Secret-Token`` header must match too. ``set_webhook`` registers both.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Sequence

from aiogram import Bot, Dispatcher, Router
from aiogram.exceptions import AiogramError
from aiogram.filters import Command, CommandStart
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, WebAppInfo
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from teller.errors import TelegramUnavailable, TellerError
from teller.log import get_logger
from teller.telegram.messages import balances_text

__all__ = [
    "BalanceRow",
    "BalancesFor",
    "build_dispatcher",
    "run_polling",
    "mount_webhook",
    "set_webhook",
    "WEBHOOK_PATH",
    "UPDATES_CONCURRENCY_MAX",
]

BalanceRow = tuple[str, str | None, str, str]
BalancesFor = Callable[[int], Awaitable[Sequence[BalanceRow]]]

WEBHOOK_PATH = "/telegram/webhook/{secret}"
UPDATES_CONCURRENCY_MAX = 32  # updates handled at once in polling mode
WEBHOOK_BODY_BYTES_MAX = 256 * 1024  # an Update with a text message is a few KB
_WEBHOOK_SECRET_LEN_MIN = 16
START_TEXT = "👋 Welcome to Teller, your wallet in Telegram."
UNAVAILABLE_TEXT = "Balances are unavailable right now. Please try again in a minute."


def build_dispatcher(*, balances_for: BalancesFor, mini_app_url: str = "") -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.include_router(_build_router(balances_for=balances_for, mini_app_url=mini_app_url))
    return dispatcher


def _build_router(*, balances_for: BalancesFor, mini_app_url: str) -> Router:
    router = Router(name="teller")
    log = get_logger(component="bot")

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        if not mini_app_url:
            await message.answer(f"{START_TEXT} Send /balance to see your balances.")
            return
        button = InlineKeyboardButton(text="Open wallet", web_app=WebAppInfo(url=mini_app_url))
        await message.answer(f"{START_TEXT} Tap the button to open it.",
                             reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))

    @router.message(Command("balance"))
    async def balance(message: Message) -> None:
        if message.from_user is None:  # channel posts have no sender; nothing to show
            return
        try:
            rows = await balances_for(message.from_user.id)
        except TellerError as exc:
            log.warning("bot.balances_unavailable", code=exc.code)
            await message.answer(UNAVAILABLE_TEXT)
            return
        await message.answer(balances_text(rows))

    return router


async def run_polling(bot: Bot, dispatcher: Dispatcher, *, polling_timeout_s: int = 10) -> None:
    """Dev mode: long-poll until cancelled or ``dispatcher.stop_polling()``. Leaves the bot session open."""
    await bot.delete_webhook(drop_pending_updates=False)  # getUpdates is refused while a webhook is set
    await dispatcher.start_polling(
        bot,
        polling_timeout=polling_timeout_s,
        handle_signals=False,  # the app owns signals
        close_bot_session=False,  # the app owns the bot
        tasks_concurrency_limit=UPDATES_CONCURRENCY_MAX,
    )


def mount_webhook(app: web.Application, *, bot: Bot, dispatcher: Dispatcher, secret: str) -> str:
    """Add ``POST /telegram/webhook/{secret}`` to ``app`` (before it starts); returns the route path."""
    if len(secret) < _WEBHOOK_SECRET_LEN_MIN or not secret.replace("_", "").replace("-", "").isalnum():
        # An empty or short secret would let anyone post fake updates; Telegram allows [A-Za-z0-9_-].
        raise ValueError(f"telegram.webhook_secret must be at least {_WEBHOOK_SECRET_LEN_MIN} chars of [A-Za-z0-9_-]")
    inner = SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret)

    async def handle(request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.match_info["secret"].encode(), secret.encode()):
            raise web.HTTPNotFound()
        if request.content_length is not None and request.content_length > WEBHOOK_BODY_BYTES_MAX:
            raise web.HTTPRequestEntityTooLarge(max_size=WEBHOOK_BODY_BYTES_MAX, actual_size=request.content_length)
        body = await request.read()  # cached by aiohttp: aiogram's request.json() reads it again
        if len(body) > WEBHOOK_BODY_BYTES_MAX:
            raise web.HTTPRequestEntityTooLarge(max_size=WEBHOOK_BODY_BYTES_MAX, actual_size=len(body))
        # aiogram would answer 500 on a body that is not an Update object; bad input is a 400.
        try:
            update = json.loads(body)
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise web.HTTPBadRequest(text="body is not a Telegram Update")
        return await inner.handle(request)

    app.router.add_post(WEBHOOK_PATH, handle)
    return WEBHOOK_PATH


async def set_webhook(bot: Bot, *, public_base_url: str, secret: str) -> str:
    """Tell Telegram where to post updates (path secret and header secret); returns the URL."""
    url = f"{public_base_url.rstrip('/')}{WEBHOOK_PATH.format(secret=secret)}"
    try:
        await bot.set_webhook(url=url, secret_token=secret, allowed_updates=["message", "callback_query"])
    except AiogramError as exc:
        raise TelegramUnavailable("cannot register the webhook", error=type(exc).__name__) from exc
    return url
