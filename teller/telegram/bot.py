"""The bot: an aiogram Dispatcher answering ``/start`` and ``/balance``, by long polling or webhook.

The bot knows nothing of storage. ``/balance`` calls an injected ``balances_for(telegram_id)``
that returns rows of (asset, chain or None, available, held) in display units; every update first
goes through an injected ``claim_update(update_id)`` that is true only the first time an id is
seen (``teller.storage.bot_updates`` in the app), so a redelivered update gets no second answer.
``/start`` offers a button that opens the Mini App (``telegram.mini_app_url``), or plain text
when none is set.

Every handler of the router answers only in the sender's own private chat
(:func:`in_own_private_chat`): a group would see the sender's balances, and an update naming a
victim as ``from`` and the attacker's chat as ``chat`` would carry the victim's balances to the
attacker. Telegram also refuses a ``web_app`` button outside private chats.

Long polling (dev): ``run_polling``. Webhook (production): ``teller.telegram.webhook``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
    WebAppInfo,
)

from teller.errors import TellerError
from teller.log import get_logger
from teller.telegram.chats import in_own_private_chat
from teller.telegram.contact import ContactRecorder, build_contact_router
from teller.telegram.messages import balances_text

__all__ = [
    "BalanceRow",
    "BalancesFor",
    "ClaimUpdate",
    "build_dispatcher",
    "in_own_private_chat",
    "run_polling",
    "UPDATES_CONCURRENCY_MAX",
]

BalanceRow = tuple[str, str | None, str, str]
BalancesFor = Callable[[int], Awaitable[Sequence[BalanceRow]]]
ClaimUpdate = Callable[[int], Awaitable[bool]]  # True the first time an update id is seen, ever

UPDATES_CONCURRENCY_MAX = 32  # updates handled at once in polling mode
START_TEXT = "👋 Welcome to Teller, your wallet in Telegram."
UNAVAILABLE_TEXT = "Balances are unavailable right now. Please try again in a minute."


class _DropRepeats(BaseMiddleware):
    """An outer middleware on updates (webhook and polling alike): claim the id, or drop the update.

    The claim is written before any handler runs, so an update is answered at most once: a process
    that dies between the claim and its sendMessage leaves that update unanswered (the user sends
    the command again). The other order, claiming after the send, could answer twice, and a reply
    is not idempotent. A claim that cannot be written drops the update for the same reason."""

    def __init__(self, claim_update: ClaimUpdate) -> None:
        self._claim_update = claim_update
        self._log = get_logger(component="bot")

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        try:
            first = await self._claim_update(event.update_id)
        except TellerError as exc:
            self._log.warning("bot.update_claim_unavailable", update_id=event.update_id, code=exc.code)
            return None
        if not first:
            self._log.info("bot.update_repeated", update_id=event.update_id)
            return None
        result = await handler(event, data)
        if result is UNHANDLED:  # no handler took it: a group chat, another's chat, an unknown command
            self._log.debug("bot.update_unhandled", update_id=event.update_id)
        return result


def build_dispatcher(*, balances_for: BalancesFor, claim_update: ClaimUpdate, mini_app_url: str = "",
                     record_contact: ContactRecorder | None = None) -> Dispatcher:
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(_DropRepeats(claim_update))
    dispatcher.include_router(_build_router(balances_for=balances_for, mini_app_url=mini_app_url))
    if record_contact is not None:
        dispatcher.include_router(build_contact_router(record_contact=record_contact))
    return dispatcher


def _build_router(*, balances_for: BalancesFor, mini_app_url: str) -> Router:
    router = Router(name="teller")
    router.message.filter(in_own_private_chat)
    router.callback_query.filter(in_own_private_chat)
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
        assert message.from_user is not None  # in_own_private_chat
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
