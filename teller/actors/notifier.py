"""Notifier: one short Telegram message per event, at most once, within Telegram's limits.

Events arrive as ``notify(event)`` tells from the relay (the actor's bounded mailbox is the
buffer: a full one refuses, and the relay retries later, so the notifier never blocks it). Each
event becomes one send task, at most ``sends_concurrent_max`` at a time (so one chat's 1/s limit
or a 429 wait does not hold up everyone else); when all slots are busy the handler waits, the
mailbox fills, and back-pressure reaches the relay.

One event, at most one message, across restarts (``teller.storage.notifications``): the event id
is claimed (``sending``) before the send and the outcome recorded after. A crash in between leaves
``sending``, which is never retried: a missed notification is better than a doubled one. The
sender waits out 429s itself; a 403 (the user blocked the bot) or a 400 is recorded and never
retried; an outage that surely never reached Telegram (our limiter refused, connection refused,
429s exhausted) is retried a bounded number of times, while a timeout, whose message may have gone
out, is recorded ``failed``.

On start the notifier picks up recently delivered events that have no record at all (they were in
a crashed instance's mailbox): the relay had already marked them delivered.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import aiohttp
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter

from teller.actors.outbox_relay import event_from_row
from teller.errors import TelegramUnavailable, TellerError
from teller.events import Event
from teller.runtime import AsyncioActor, Call
from teller.storage import utc_now
from teller.storage.notifications import Notifications, Outcome
from teller.telegram.messages import message_for
from teller.telegram.sender import MessageSender, SendOutcome

__all__ = ["Notifier", "NotifierState", "NOTIFIER_MAILBOX_MAX"]

NOTIFIER_MAILBOX_MAX = 10_000
SENDS_CONCURRENT_MAX = 32
SEND_ATTEMPTS_MAX = 4
RETRY_WAIT_MAX_S = 30.0
CATCH_UP_WINDOW_S = 3600.0
CATCH_UP_PAGE_MAX = 1_000
STOP_WAIT_S = 2.0
_OUTCOMES: dict[SendOutcome, Outcome] = {
    SendOutcome.SENT: "sent", SendOutcome.BLOCKED: "blocked", SendOutcome.REJECTED: "rejected",
}


class NotifierState:
    """Counts for /ops/status, kept by the flow across restarts."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return dict(self.counts)


class Notifier(AsyncioActor):
    expected_errors = (TellerError,)
    mailbox_max = NOTIFIER_MAILBOX_MAX

    def __init__(self, *, store: Any, sender: MessageSender, state: NotifierState,
                 sends_concurrent_max: int = SENDS_CONCURRENT_MAX, retry_wait_s: float = 1.0) -> None:
        super().__init__()
        self._store = store
        self._notes = Notifications(store)
        self._sender = sender
        self._state = state
        self._slots = asyncio.Semaphore(sends_concurrent_max)
        self._tasks: set[asyncio.Task[None]] = set()
        self._retry_wait_s = retry_wait_s

    def on_start(self) -> None:
        self.actor_ref.tell(Call("catch_up", (), {}))

    async def on_stop(self) -> None:
        await self._settle()

    async def on_failure(self, *_exc: Any) -> None:
        await self._settle()

    async def _settle(self) -> None:
        """Give in-flight sends a moment; a send cut off stays 'sending' and is never repeated."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_S)
            for task in pending:
                task.cancel()

    async def notify(self, event: Event) -> None:
        await self._slots.acquire()  # all busy: wait here, so the mailbox (bounded) takes the pressure
        task = asyncio.get_running_loop().create_task(self._notify_one(event))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def catch_up(self) -> int:
        """Notify the recently delivered events with no record, page by page: a stopped instance's
        mailbox may have held thousands."""
        since = utc_now() - timedelta(seconds=CATCH_UP_WINDOW_S)
        total, after_id = 0, 0
        while True:
            rows = await self._notes.unnotified_since(delivered_after=since, after_id=after_id,
                                                      limit=CATCH_UP_PAGE_MAX)
            for row in rows:
                try:
                    event = event_from_row(row)
                except ValueError:
                    continue  # the relay parks such rows; it would not have been delivered
                await self.notify(event)
            total += len(rows)
            if len(rows) < CATCH_UP_PAGE_MAX:
                break
            after_id = rows[-1].id
        if total:
            self.log.info("notifier.catch_up", events=total)
        return total

    async def _notify_one(self, event: Event) -> None:
        try:
            await self._notify(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one event's failure must not stop the others
            self._state.count("error")
            self.log.error("notifier.failed", event_id=event.id, error=repr(exc)[:300])

    async def _notify(self, event: Event) -> None:
        event_id = _outbox_id(event.id)
        if event_id is None:
            self.log.warning("notifier.foreign_event", event_id=event.id)
            return
        user = await self._store.users.get(int(event.user_id)) if event.user_id.isdigit() else None
        if user is None:
            if await self._notes.record(event_id, "skipped", detail="no such user"):
                self._state.count("skipped")
            return
        text = message_for(event)
        if not await self._notes.claim(event_id, user_id=user.id, telegram_id=user.telegram_id):
            self._state.count("duplicate")
            return
        outcome, detail = await self._send(user.telegram_id, text)
        await self._notes.finish(event_id, outcome, detail=detail)
        self._state.count(outcome)
        self.log.info("notifier.done", event_id=event.id, type=event.type.value, outcome=outcome)

    async def _send(self, chat_id: int, text: str) -> tuple[Outcome, str]:
        for attempt in range(1, SEND_ATTEMPTS_MAX + 1):
            try:
                result = await self._sender.send(chat_id, text)
            except TelegramUnavailable as exc:
                if not _surely_unsent(exc) or attempt == SEND_ATTEMPTS_MAX:
                    return "failed", exc.message
                wait_s = min(RETRY_WAIT_MAX_S, float(exc.details.get("retry_after_s") or 0)
                             or self._retry_wait_s * 2 ** (attempt - 1))
                self.log.info("notifier.retry", chat_id=chat_id, attempt=attempt, wait_s=wait_s)
                await asyncio.sleep(wait_s)
                continue
            return _OUTCOMES[result.outcome], result.detail
        raise AssertionError("unreachable")


def _outbox_id(event_id: str) -> int | None:
    digits = event_id.removeprefix("outbox-")
    return int(digits) if digits != event_id and digits.isdigit() else None


def _surely_unsent(exc: TelegramUnavailable) -> bool:
    """True when the message cannot have reached Telegram, so sending again cannot double it."""
    cause = exc.__cause__
    if cause is None:
        return True  # our limiter refused, or Telegram kept answering 429
    if isinstance(cause, TelegramRetryAfter):
        return True  # a 429 is a refusal: nothing was sent
    return isinstance(cause, TelegramNetworkError) and isinstance(cause.__cause__, aiohttp.ClientConnectorError)
