"""The events flow: OutboxRelay (outbox -> JetStream + in-process subscribers), Notifier, the bot.

Children: ``outbox-relay`` (slot ``outbox-relay``); ``notifier`` and, in ``telegram.mode =
"polling"``, ``telegram-bot`` (slot ``notifier``). In ``webhook`` mode the bot is the route
``POST /telegram/webhook/{secret}`` on Teller's own server (register it with Telegram through
``teller.telegram.set_webhook``). Either way every update is claimed in ``bot_updates`` first
(``teller.storage.bot_updates``): a redelivered one gets no second answer. ``/ops/status`` gains
``events``: the relay's connection and last error, parked rows, notification outcomes.

Overrides (tests): ``events_publisher`` (a ``JetStreamPublisher``, e.g. with its own stream and
subject prefix), ``telegram_sender``, ``telegram_bot`` (a factory of aiogram ``Bot``), and the
timings ``outbox_poll_interval_s``, ``outbox_backoff_max_s``, ``notifier_retry_wait_s``,
``bot_polling_timeout_s``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiogram import Bot, Dispatcher
from aiohttp import web

from teller.actors.bot_poller import POLLING_TIMEOUT_S, BotPoller
from teller.actors.notifier import Notifier, NotifierState
from teller.actors.outbox_relay import BACKOFF_MAX_S, POLL_INTERVAL_S, OutboxRelay, RelayState
from teller.errors import ServiceUnavailable
from teller.events import Event, JetStreamPublisher
from teller.flows.base import AppContext, Flow
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount
from teller.payments.registry import ContactBook
from teller.runtime import Call, ChildSpec
from teller.storage import StorageError
from teller.storage.bot_updates import BotUpdates
from teller.storage.notifications import OutboxRows
from teller.telegram.bot import BalanceRow, build_dispatcher
from teller.telegram.sender import build_sender
from teller.telegram.session import make_bot
from teller.telegram.webhook import WEBHOOK_BODY_BYTES_MAX, WEBHOOK_PATH, mount_webhook

__all__ = ["build", "RELAY_PATH", "NOTIFIER_PATH", "BOT_PATH"]

RELAY_PATH = "outbox-relay"
NOTIFIER_PATH = "notifier"
BOT_PATH = "telegram-bot"


def build(ctx: AppContext) -> Flow:
    settings, store, overrides = ctx.settings, ctx.store, ctx.overrides
    relay_state, notifier_state = RelayState(), NotifierState()
    publisher: JetStreamPublisher | None = overrides.get("events_publisher")
    if publisher is None and settings.nats.url:
        publisher = JetStreamPublisher(settings.nats.url, stream=settings.nats.stream,
                                       subject_prefix=settings.nats.subject_prefix)
    sender = overrides.get("telegram_sender") or build_sender(settings)

    async def to_notifier(event: Event) -> None:
        # A tell: the notifier's bounded mailbox is the buffer; full or restarting raises, and the
        # relay keeps the event undelivered and retries.
        ctx.handle(NOTIFIER_PATH).tell(Call("notify", (event,), {}))

    ctx.subscribers.append(to_notifier)
    relay = ChildSpec(name=RELAY_PATH, factory=lambda: OutboxRelay(
        store=store, publisher=publisher, subscribers=ctx.subscribers, state=relay_state,
        poll_interval_s=overrides.get("outbox_poll_interval_s", POLL_INTERVAL_S),
        backoff_max_s=overrides.get("outbox_backoff_max_s", BACKOFF_MAX_S)))
    notifier = ChildSpec(name=NOTIFIER_PATH, factory=lambda: Notifier(
        store=store, sender=sender, state=notifier_state,
        retry_wait_s=overrides.get("notifier_retry_wait_s", 1.0)))

    make_bot_: Callable[[], Bot] = overrides.get("telegram_bot") or (
        lambda: make_bot(settings.auth.bot_token, api_base=settings.telegram.api_base))
    balances_for, claim_update = _balances_for(ctx), _claim_update(BotUpdates(store))
    record_contact = _contact_recorder(ctx)

    def make_dispatcher() -> Dispatcher:
        return build_dispatcher(balances_for=balances_for, claim_update=claim_update,
                                mini_app_url=settings.telegram.mini_app_url, record_contact=record_contact)

    notifier_slot: list[Any] = [notifier]
    routes: tuple[Route, ...] = ()
    webhook_bot: Bot | None = None
    if settings.telegram.mode == "polling":
        notifier_slot.append(ChildSpec(name=BOT_PATH, factory=lambda: BotPoller(
            make_bot=make_bot_, make_dispatcher=make_dispatcher,
            polling_timeout_s=overrides.get("bot_polling_timeout_s", POLLING_TIMEOUT_S))))
    elif settings.telegram.mode == "webhook":
        webhook_bot = make_bot_()
        routes = (_webhook_route(webhook_bot, make_dispatcher(), path_secret=settings.telegram.webhook_path_secret,
                                 header_secret=settings.telegram.webhook_secret),)

    rows = OutboxRows(store)

    async def status() -> dict[str, Any]:
        return {"events": {
            "relay": relay_state.as_dict(), "parked": await rows.parked_count(),
            "notifications": notifier_state.as_dict(), "telegram_mode": settings.telegram.mode,
        }}

    async def close() -> None:
        if publisher is not None:
            await publisher.close()
        await sender.close()
        if webhook_bot is not None:
            await webhook_bot.session.close()

    return Flow(
        name="events",
        children={"outbox-relay": (relay,), "notifier": tuple(notifier_slot)},
        routes=routes, status=status, close=close,
        services={"events": {"relay_state": relay_state, "notifier_state": notifier_state}},
    )


def _balances_for(ctx: AppContext) -> Callable[[int], Any]:
    async def balances_for(telegram_id: int) -> Sequence[BalanceRow]:
        try:
            user = await ctx.store.users.get_by_telegram_id(telegram_id)
            if user is None:
                return []
            balances = await ctx.store.ledger.balances(user.id)
        except StorageError as exc:
            raise ServiceUnavailable("balances are unavailable") from exc
        rows: list[BalanceRow] = []
        for balance in balances:
            asset = ctx.assets.get(balance.asset)
            if asset is None or (balance.available_minor == 0 and balance.held_minor == 0):
                continue
            rows.append((asset.symbol, asset.chain, format_amount(balance.available_minor, asset.decimals),
                         format_amount(balance.held_minor, asset.decimals)))
        return rows

    return balances_for


def _claim_update(updates: BotUpdates) -> Callable[[int], Awaitable[bool]]:
    async def claim_update(update_id: int) -> bool:
        try:
            return await updates.claim(update_id)
        except StorageError as exc:
            raise ServiceUnavailable("the bot's update memory is unavailable") from exc

    return claim_update


def _contact_recorder(ctx: AppContext) -> Callable[[int, str], Any]:
    """The bot's contact step, as the Mini App's: the sender's own contact, recorded for their user."""
    contacts = ContactBook(ctx.store)

    async def record_contact(telegram_id: int, phone_number: str) -> None:
        try:
            user = await ctx.store.users.get_or_create(telegram_id=telegram_id)
            await contacts.share(user_id=user.id, telegram_id=telegram_id, contact_user_id=telegram_id,
                                 phone=phone_number)
        except StorageError as exc:
            raise ServiceUnavailable("contacts cannot be saved right now") from exc

    return record_contact


def _webhook_route(bot: Bot, dispatcher: Dispatcher, *, path_secret: str, header_secret: str) -> Route:
    """mount_webhook's handler (secret checks, size bound, Update check, aiogram) as one of our Routes."""
    scratch = web.Application()
    # ValueError on a weak secret or equal secrets
    mount_webhook(scratch, bot=bot, dispatcher=dispatcher, path_secret=path_secret, header_secret=header_secret)
    [resource] = [r for r in scratch.router.resources() if r.canonical == WEBHOOK_PATH]
    [handler] = [route.handler for route in resource if route.method == "POST"]
    return Route(
        "POST", WEBHOOK_PATH, handler, "Telegram posts bot updates here (webhook mode)", "telegram",
        security=None, request_schema={"type": "object"},
        params=(Param("secret", "path", {"type": "string"}, required=True,
                      description="telegram.webhook_path_secret; any other value is a 404"),
                Param("X-Telegram-Bot-Api-Secret-Token", "header", {"type": "string"}, required=True,
                      description="telegram.webhook_secret; missing or any other value is a 401"),),
        responses={200: {"type": "object"}, 400: None, 401: None, 404: ref("Error"), 413: ref("Error")},
        body_size_max_bytes=WEBHOOK_BODY_BYTES_MAX,
    )
