"""Helpers for the events-flow tests: a Teller with the real JetStream and the local Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats
import nats.js.errors

import teller.app as teller_app
from teller.app import Teller, start_teller
from teller.flows import events
from teller.events import JetStreamPublisher
from teller.storage import Event, chain_account, user_account
from teller.telegram.sender import TelegramSender
from teller.telegram.session import make_bot
from tests.fixtures.http import settings_for_tests
from tests.fixtures.nats import JetStreamNames
from tests.fixtures.teller_app import wait_for

USDT = "ethereum:USDT"
DEADLINE_S = 15.0
FAST = {"outbox_poll_interval_s": 0.05, "outbox_backoff_max_s": 0.3, "notifier_retry_wait_s": 0.05,
        "bot_polling_timeout_s": 1}


async def until(predicate: Callable[[], Awaitable[bool]], *, what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``predicate`` until true or fail after a bounded deadline."""
    await wait_for(predicate, timeout_s=deadline_s, what=what)


@asynccontextmanager
async def running_teller(store: Any, *, names: JetStreamNames | None = None, nats_url: str | None = None,
                         botapi: Any = None, telegram: dict[str, Any] | None = None,
                         overrides: dict[str, Any] | None = None) -> AsyncIterator[Teller]:
    all_overrides: dict[str, Any] = dict(FAST)
    if names is not None:
        all_overrides["events_publisher"] = JetStreamPublisher(
            nats_url or names.url, stream=names.stream, subject_prefix=names.subject_prefix, connect_timeout_s=0.5)
    telegram_section = {"mode": "off", **(telegram or {})}
    if botapi is not None:
        telegram_section.setdefault("api_base", botapi.api_base)
        if telegram_section["mode"] == "off":  # the notifier still talks to the local Bot API
            all_overrides["telegram_sender"] = TelegramSender(make_bot(
                settings_for_tests().auth.bot_token, api_base=botapi.api_base))
    all_overrides.update(overrides or {})
    # Only this flow: the others are built in parallel and may be mid-change in the shared tree.
    saved, teller_app.FLOW_BUILDERS = teller_app.FLOW_BUILDERS, lambda: [events.build]
    try:
        teller = await start_teller(settings_for_tests(telegram=telegram_section), store=store,
                                    overrides=all_overrides)
    finally:
        teller_app.FLOW_BUILDERS = saved
    try:
        yield teller
    finally:
        await teller.stop()


async def credit_deposit(store: Any, *, telegram_id: int, amount_minor: int = 12_500_000, amount: str = "12.5",
                         tx_hash: str = "0xabc", log_index: int = 0) -> int:
    """What the deposits flow does on confirmation: a ledger credit and its outbox event, one transaction."""
    user = await store.users.get_or_create(telegram_id=telegram_id)
    await store.ledger.transfer(
        debit=chain_account("ethereum", USDT), credit=user_account(user.id, USDT), asset=USDT,
        amount=amount_minor, key=f"deposit:ethereum:{tx_hash}:{log_index}",
        outbox=[Event("deposit.credited", {"user_id": str(user.id), "asset": "USDT", "chain": "ethereum",
                                           "amount": amount, "tx_hash": tx_hash})])
    return user.id


async def backlog(store: Any) -> int:
    return (await store.outbox.backlog()).size


def events_flow(teller: Teller) -> Any:
    return next(flow for flow in teller.flows if flow.name == "events")


async def stream_messages(names: JetStreamNames) -> list[Any]:
    """Every message in the test's stream, in order (with headers)."""
    nc = await nats.connect(servers=[names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(names.stream)
        except nats.js.errors.NotFoundError:
            return []  # the relay has not connected yet
        return [await js.get_msg(names.stream, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)
                if info.state.messages]
    finally:
        await nc.close()
