"""The hybrid future: a pykka ``Future`` that is awaitable without blocking the loop.

pykka's own ``Future.__await__`` yields once and then calls the blocking ``get()``, which froze the
loop for as long as the actor took (FIELD-NOTES). This one completes from any thread, wakes an
awaiting coroutine through its own loop, and refuses a blocking ``get()`` on a thread that runs an
event loop while the value is not there yet (that would deadlock the very loop that must produce it).

No locks: CPython's GIL orders the two attribute writes below, and each side re-checks after
publishing its half (the setter publishes the outcome, the waiter publishes its wake-up channel).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Generator
from typing import Any, TypeVar

import pykka
import pykka._future

from teller.runtime.errors import AskTimeout, BlockingGetOnLoop

T = TypeVar("T")

_PENDING: Any = object()
_UNSET: Any = pykka._future._Unset()  # pykka's "no get-hook result yet"; only ever replaced, never mutated
_get_ident = threading.get_ident
_running_loop = asyncio._get_running_loop  # the C fast path; public get_running_loop raises


class AsyncioFuture(pykka.Future[T]):
    """Completes from any thread; ``await`` never blocks the loop; ``get()`` on the loop raises."""

    # Class-level defaults instead of __slots__ and pykka's __init__ (which allocates an ``_Unset``
    # per future): one future per ask, and an instance only stores what it changes.
    _value: Any = _PENDING
    _exc: BaseException | None = None
    _waiter: asyncio.Future[None] | None = None
    _waiter_loop: asyncio.AbstractEventLoop | None = None
    _waiter_thread: int = 0
    _event: threading.Event | None = None
    _get_hook = None
    _get_hook_result: Any = _UNSET

    def __init__(self) -> None:
        pass  # everything starts from the class defaults above

    def __repr__(self) -> str:
        return "<AsyncioFuture done>" if self.done() else "<AsyncioFuture pending>"

    def done(self) -> bool:
        return self._value is not _PENDING or self._get_hook is not None

    # -- completing ---------------------------------------------------------------------------
    def set(self, value: Any = None) -> None:
        if self._value is not _PENDING or self._get_hook is not None:
            raise RuntimeError("future already completed")
        self._value = value
        self._wake()

    def set_exception(self, exc_info: Any = None) -> None:
        if exc_info is None:
            exc_info = sys.exc_info()
        exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
        if exc is None:
            exc = exc_info[0]()
        self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """Complete with an exception (the runtime's own, tuple-free way)."""
        if self._value is not _PENDING or self._get_hook is not None:
            raise RuntimeError("future already completed")
        self._exc = exc
        self._value = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if _get_ident() == self._waiter_thread:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                assert self._waiter_loop is not None
                self._waiter_loop.call_soon_threadsafe(_resolve, waiter)
        event = self._event
        if event is not None:
            event.set()

    # -- reading ------------------------------------------------------------------------------
    def _outcome(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._value

    def get(self, *, timeout: float | None = None) -> T:
        if self._get_hook is not None:
            return super().get(timeout=timeout)
        if self._value is _PENDING:
            if _running_loop() is not None:
                raise BlockingGetOnLoop(
                    "blocking get() on the event-loop thread would deadlock it: use `await future`"
                )
            event = self._event or threading.Event()
            self._event = event
            if self._value is _PENDING and not event.wait(timeout):
                raise pykka.Timeout(f"{timeout} seconds")
        return self._outcome()  # type: ignore[no-any-return]

    def _loop_waiter(self) -> asyncio.Future[None]:
        """An asyncio future on the running loop that resolves when this one completes."""
        waiter = self._waiter
        if waiter is None:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiter_loop = loop
            self._waiter_thread = _get_ident()
            self._waiter = waiter
            if self._value is not _PENDING:  # completed while we published the waiter
                waiter.set_result(None)
        return waiter

    def __await__(self) -> Generator[Any, None, T]:
        if self._get_hook is not None:
            # map()/join()/filter() futures compute through blocking get(): run that off the loop.
            loop = asyncio.get_running_loop()
            return (yield from loop.run_in_executor(None, self.get).__await__())
        if self._value is _PENDING:
            yield from self._loop_waiter().__await__()
        return self._outcome()  # type: ignore[no-any-return]

    __iter__ = __await__

    async def wait(self, timeout_s: float | None) -> T:
        """Await the outcome for at most ``timeout_s`` seconds, else raise ``AskTimeout``."""
        if timeout_s is None or self._value is not _PENDING:
            return await self
        try:
            await asyncio.wait_for(asyncio.shield(self._loop_waiter()), timeout_s)
        except TimeoutError:
            raise AskTimeout(f"no reply within {timeout_s} s") from None
        return self._outcome()  # type: ignore[no-any-return]


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
