"""The actor's inbox: a bounded deque on the loop, fed from any thread, that wakes its actor.

``put`` is what pykka's ``ActorRef.tell/ask`` call. On the loop thread it appends and, if the actor
is idle, schedules one ``_pump`` of it with ``call_soon`` (an idle actor has no task and no waiter:
at 100k keyed actors those were most of the GC's work). From another thread it checks the bound
(approximately: the count may move under us, which only makes the bound a little soft) and hands
the append to the loop through ``call_soon_threadsafe``. A full mailbox refuses the message with
``MailboxFull`` to the sender; a closed one (its actor ended) answers ``ActorDeadError``.

The mailbox also carries the actor's stopped flag (``is_set``/``set``, what pykka's
``ActorRef.is_alive`` reads), so that neither needs an object of its own per actor.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from pykka import ActorDeadError
from pykka._envelope import Envelope
from pykka.messages import _ActorStop

from teller.log import get_logger

from teller.runtime.errors import MailboxFull

MAILBOX_MAX_DEFAULT = 10_000
"""Messages an actor may have queued before senders are refused (override per class)."""

_get_ident = threading.get_ident


class Mailbox:
    """Bounded FIFO of envelopes owned by one actor on one loop."""

    __slots__ = ("queue", "bound", "actor", "scheduled", "stopped", "_loop", "_thread", "owner", "closed")

    def __init__(self, bound: int) -> None:
        assert bound > 0, "a mailbox needs room for at least one message"
        self.queue: deque[Envelope[Any]] = deque()
        self.bound = bound
        self.actor: Any = None  # the AsyncioActor whose ``_pump`` this wakes
        self.scheduled = False  # True while the actor runs or is due to run: no second wake-up
        self.stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self.owner = ""
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop, actor: Any) -> None:
        """Attach to the loop and the actor and schedule its first run (``on_start``)."""
        self._loop = loop
        self._thread = _get_ident()
        self.actor = actor
        self.scheduled = True
        loop.call_soon(actor._pump)

    def put(self, envelope: Envelope[Any], /) -> None:
        if len(self.queue) >= self.bound:
            raise MailboxFull(f"mailbox of {self.owner or 'actor'} is full ({self.bound} messages)")
        if _get_ident() == self._thread:
            if self.closed:
                raise ActorDeadError(f"{self.owner or 'actor'} stopped")
            self.queue.append(envelope)
            if not self.scheduled:
                self.scheduled = True
                self._loop.call_soon(self.actor._pump)  # type: ignore[union-attr]
        elif self._loop is None:
            self.queue.append(envelope)  # not started yet: the actor drains it on start
        else:
            self._loop.call_soon_threadsafe(self.put_unbounded, envelope)

    def put_unbounded(self, envelope: Envelope[Any]) -> None:
        """Append on the loop thread without the bound (messages already accepted elsewhere)."""
        if self.closed:  # a cross-thread put that raced the actor's end: answer, never lose it
            refuse([envelope], ActorDeadError(f"{self.owner or 'actor'} stopped"), log=get_logger(actor=self.owner))
            return
        self.queue.append(envelope)
        self.wake()

    def wake(self) -> None:
        """Make an idle actor run (to take a message, or notice a stop request)."""
        if not self.scheduled and self._loop is not None and not self.closed:
            self.scheduled = True
            self._loop.call_soon(self.actor._pump)

    # pykka's ``actor_stopped`` protocol (a threading.Event's is_set/set), set on the loop only.
    def is_set(self) -> bool:
        return self.stopped

    def set(self) -> None:
        self.stopped = True

    def get(self) -> Envelope[Any]:
        return self.queue.popleft()

    def empty(self) -> bool:
        return not self.queue

    def __len__(self) -> int:
        return len(self.queue)

    def drain(self) -> list[Envelope[Any]]:
        items = list(self.queue)
        self.queue.clear()
        return items


def refuse(envelopes: list[Envelope[Any]], error: BaseException, *, log: Any) -> None:
    """Answer every ask with ``error`` and log how many tells nobody will handle."""
    dropped = 0
    for envelope in envelopes:
        reply = envelope.reply_to
        if type(envelope.message) is _ActorStop:
            if reply is not None:
                reply.set(None)
        elif reply is not None:
            reply.set_exception((type(error), error, None))
        else:
            dropped += 1
    if dropped:
        log.error("tells not delivered", count=dropped, error=repr(error))
