"""The actor's inbox: a bounded deque on the loop, fed from any thread.

``put`` is what pykka's ``ActorRef.tell/ask`` call. On the loop thread it appends and wakes the
actor's task directly; from another thread it checks the bound (approximately: the count may move
under us, which only makes the bound a little soft) and hands the append to the loop through
``call_soon_threadsafe``. A full mailbox refuses the message with ``MailboxFull`` to the sender.
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
    """Bounded FIFO of envelopes owned by one actor task on one loop."""

    __slots__ = ("queue", "bound", "_loop", "_thread", "_waiter", "owner", "closed")

    def __init__(self, bound: int) -> None:
        assert bound > 0, "a mailbox needs room for at least one message"
        self.queue: deque[Envelope[Any]] = deque()
        self.bound = bound
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._waiter: asyncio.Future[None] | None = None
        self.owner = ""
        self.closed = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = _get_ident()

    def put(self, envelope: Envelope[Any], /) -> None:
        if len(self.queue) >= self.bound:
            raise MailboxFull(f"mailbox of {self.owner or 'actor'} is full ({self.bound} messages)")
        if _get_ident() == self._thread:
            self.queue.append(envelope)
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        elif self._loop is None:
            self.queue.append(envelope)  # not started yet: the task drains it on start
        else:
            self._loop.call_soon_threadsafe(self.put_unbounded, envelope)

    def put_unbounded(self, envelope: Envelope[Any]) -> None:
        """Append on the loop thread without the bound (messages already accepted elsewhere)."""
        if self.closed:  # a cross-thread put that raced the actor's end: answer, never lose it
            refuse([envelope], ActorDeadError(f"{self.owner or 'actor'} stopped"), log=get_logger(actor=self.owner))
            return
        self.queue.append(envelope)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wake(self) -> None:
        """Wake the task without a message (to make it notice a stop request)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        assert self._loop is not None
        waiter = self._loop.create_future()
        self._waiter = waiter
        return waiter

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
