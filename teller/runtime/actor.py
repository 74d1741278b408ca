"""``AsyncioActor``: a pykka actor that runs on the asyncio loop, not as a thread.

pykka's ``ActorRef.tell/ask``, proxies and (optionally) the registry keep working: the class picks
its own inbox (``Mailbox``) and future (``AsyncioFuture``), and ``_start_actor_loop`` schedules it.
One message at a time; a handler may be ``async def`` (the next message waits until it returns).

How it runs: an idle actor holds no task, future or callback (100k keyed actors at rest cost the
GC three objects each). A put wakes it with one ``call_soon`` of ``_pump``, which runs plain
handlers right there; a handler (or hook) that returns a coroutine moves the actor onto a task
that awaits it and serves the queue until it is empty, then the actor is at rest again.

Failure semantics (what pykka lacks, see FIELD-NOTES):
- an exception of a class in ``expected_errors`` is the handler's answer: an ask gets it, a tell
  logs it, and the actor keeps going;
- any other exception (in ``on_start``, a tell handler, or an ask handler, where the caller still
  gets it) ends this instance with that reason; the owner (a supervisor's handle) restarts a fresh
  one and re-delivers the messages still queued;
- a ``BaseException`` ends only this actor, never the others (pykka stops every actor).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from types import CoroutineType
from typing import Any, ClassVar

import pykka
from pykka import ActorDeadError, ActorRef, ActorRegistry
from pykka._envelope import Envelope
from pykka._introspection import get_attr_directly
from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr, _ActorStop

from teller.log import get_logger
from teller.runtime.errors import ActorKilled
from teller.runtime.future import AsyncioFuture
from teller.runtime.mailbox import MAILBOX_MAX_DEFAULT, Mailbox, refuse

PUMP_BATCH_MAX = 256
"""Messages an actor handles in one loop callback before it lets other callbacks run."""

_PENDING: Any = object()
_PYKKA_MESSAGES = frozenset({ProxyGetAttr, ProxySetAttr})

ExitHook = Callable[["AsyncioActor", BaseException | None, list[Envelope[Any]]], None]
"""Called on the loop when an actor instance ends: (actor, reason or None, unhandled envelopes)."""


class Call:
    """Message: invoke ``name(*args, **kwargs)`` on the actor instance, inside the actor."""

    __slots__ = ("name", "args", "kwargs")

    def __init__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.args = args
        self.kwargs = kwargs


class AsyncioActor(pykka.Actor):
    """Base class of Teller's actors. Override ``on_receive`` and/or write plain methods."""

    mailbox_max: ClassVar[int] = MAILBOX_MAX_DEFAULT
    """Bound on queued messages; past it senders get ``MailboxFull``."""

    expected_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Errors that are answers, not crashes (the app sets ``(TellerError,)``)."""

    register_in_registry: ClassVar[bool] = True
    """pykka's registry is a list behind a lock (O(n) unregister): keyed children skip it."""

    actor_path: str = ""
    actor_inbox: Mailbox
    # Defaults on the class, so that an instance only stores what it changes (100k actors).
    processed: int = 0
    cancelled: bool = False
    _exit_hook: Any = None
    _owner: Any = None
    _stop_now: bool = False
    _stop_reason: BaseException | None = None
    _task: asyncio.Task[None] | None = None
    _start_error: Any = _PENDING
    _started_waiter: asyncio.Future[BaseException | None] | None = None
    _stopped_waiter: asyncio.Future[None] | None = None
    _ended: bool = False
    _urn: str | None = None
    _ref: ActorRef[Any] | None = None
    _log: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The runtime keeps its per-instance state in single-underscore names on this class; a
        # subclass defining one of them (a method named _ended, say) silently breaks the actor.
        super().__init_subclass__(**kwargs)
        clash = sorted(name for name in vars(cls) if name in _RUNTIME_NAMES and not cls.__module__.startswith("teller.runtime"))
        if clash:
            raise TypeError(f"{cls.__name__} redefines the runtime's own attribute(s) {clash}: rename them")

    @staticmethod
    def _create_actor_inbox() -> Mailbox:
        return Mailbox(MAILBOX_MAX_DEFAULT)

    @staticmethod
    def _create_future() -> AsyncioFuture[Any]:
        return AsyncioFuture()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # pykka.Actor.__init__ is not called: it makes a uuid4 URN, an ActorRef (with a weakref)
        # and a threading.Event per actor. Here the URN and the ref are made on first use, and the
        # stopped flag is the mailbox's (``actor_stopped``): a keyed actor at rest is 3 GC objects.
        inbox = self.actor_inbox = self._create_actor_inbox()
        inbox.bound = self.mailbox_max

    # -- pykka's per-actor attributes, made on demand ---------------------------------------------
    @property  # type: ignore[override]
    def actor_urn(self) -> str:
        urn = self._urn
        if urn is None:
            urn = self._urn = uuid.uuid4().urn
        return urn

    @actor_urn.setter
    def actor_urn(self, value: str) -> None:
        self._urn = value

    @property  # type: ignore[override]
    def actor_stopped(self) -> Mailbox:
        return self.actor_inbox

    @property
    def actor_ref(self) -> ActorRef[Any]:  # type: ignore[override]
        ref = self._ref
        if ref is None:
            if "actor_inbox" not in self.__dict__:
                return None  # type: ignore[return-value]  # pykka's "forgot super().__init__()" check
            ref = self._ref = ActorRef(self)
        return ref

    @property
    def log(self) -> Any:
        """A structlog logger bound to this actor's path (made on first use: 100k actors)."""
        if self._log is None:
            self._log = get_logger(actor=self.actor_path or str(self))
        return self._log

    # -- lifecycle ------------------------------------------------------------------------------
    def _start_actor_loop(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(f"{type(self).__name__} must be started on the event-loop thread") from None
        inbox = self.actor_inbox
        inbox.owner = self.actor_path
        inbox.bind(loop, self)  # schedules the first _pump: on_start, then the queue

    def _launch(self, *, path: str, exit_hook: ExitHook | None = None, owner: Any = None) -> None:
        """Start under an owner: the runtime's equivalent of ``Actor.start()``.

        At the end, ``owner._on_exit`` (a handle: no bound method kept per actor) or ``exit_hook``
        gets (actor, reason, leftovers).
        """
        clash = sorted(_RUNTIME_NAMES.intersection(self.__dict__))
        if clash:
            raise TypeError(f"{type(self).__name__} sets the runtime's own attribute(s) {clash}: rename them")
        self.actor_path = path
        self._exit_hook = exit_hook
        self._owner = owner
        if self.register_in_registry:
            ActorRegistry.register(self.actor_ref)
        self._start_actor_loop()

    def request_stop(self, *, graceful: bool) -> None:
        """Graceful: after the queued messages. Otherwise: after the current message."""
        if graceful:
            self.actor_inbox.put_unbounded(Envelope(_ActorStop()))
        else:
            self._stop_now = True
            self.actor_inbox.wake()

    @property
    def start_failed(self) -> bool:
        """``on_start`` raised (or the instance ended before it returned)."""
        error = self._start_error
        return error is not _PENDING and error is not None

    async def wait_started(self) -> BaseException | None:
        """None once ``on_start`` returned, else the exception it raised."""
        if self._start_error is _PENDING:
            waiter = self._started_waiter
            if waiter is None:
                waiter = self._started_waiter = asyncio.get_running_loop().create_future()
            return await asyncio.shield(waiter)
        return self._start_error  # type: ignore[no-any-return]

    async def wait_stopped(self, timeout_s: float | None) -> None:
        """Wait for the instance to end; past ``timeout_s`` kill it (exit reason ``ActorKilled``)."""
        if self._ended:
            return
        waiter = self._stopped_waiter
        if waiter is None:
            waiter = self._stopped_waiter = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait({waiter}, timeout=timeout_s)
        if not done:
            self._kill()
            await asyncio.wait({waiter})

    def _kill(self) -> None:
        """Cancel the running handler (or hook), or end at the next message if none awaits."""
        self.cancelled = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        elif not self._ended:
            self._stop_reason = ActorKilled(f"{self.actor_path} cancelled")
            self._stop_now = True
            self.actor_inbox.wake()

    # -- hooks, overridden by ThreadActor to run on its thread ----------------------------------
    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        return hook(*args)

    def _dispatch(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is Call:
            return getattr(self, msg.name)(*msg.args, **msg.kwargs)
        if kind is ProxyCall:
            return get_attr_directly(self, msg.attr_path)(*msg.args, **msg.kwargs)
        if kind in _PYKKA_MESSAGES:
            return self._handle_receive(msg)  # pykka's attribute get/set through a proxy
        return self.on_receive(msg)  # what pykka's _handle_receive ends in, minus 4 isinstance checks

    # -- running: a loop callback while handlers are plain functions, a task while one awaits -----
    def _pump(self) -> None:
        """Run ``on_start`` (first time), then up to ``PUMP_BATCH_MAX`` queued messages."""
        if self._ended or self._task is not None:
            return
        if self._start_error is _PENDING:
            try:
                result = self._call_hook(self.on_start)
            except BaseException as exc:  # noqa: BLE001 - any start failure is an exit reason
                self._end(exc, None)
                return
            if type(result) is CoroutineType:
                self._task = self.actor_inbox._loop.create_task(self._start_async(result))  # type: ignore[union-attr]
                return
            self._started_with(None)
        self._drain()

    def _drain(self) -> None:
        queue = self.actor_inbox.queue
        for _ in range(PUMP_BATCH_MAX):
            if self._stop_now:
                self._end(self._stop_reason, None)
                return
            if not queue:
                self.actor_inbox.scheduled = False  # idle: the next put wakes us
                return
            envelope = queue.popleft()
            msg = envelope.message
            if type(msg) is _ActorStop:
                self._end(None, envelope)
                return
            try:
                result = self._dispatch(msg)
            except BaseException as exc:  # noqa: BLE001 - sorted by _settle_error
                if self._settle_error(envelope, exc):
                    return
                continue
            if type(result) is CoroutineType:
                self._task = self.actor_inbox._loop.create_task(self._serve_async(envelope, result))  # type: ignore[union-attr]
                return
            self.processed += 1
            if envelope.reply_to is not None:
                envelope.reply_to.set(result)
        self.actor_inbox._loop.call_soon(self._pump)  # type: ignore[union-attr]  # let others run

    def _settle_error(self, envelope: Envelope[Any], exc: BaseException) -> bool:
        """Answer the sender; True if the error ended this instance (not an expected error)."""
        self.processed += 1
        reply = envelope.reply_to
        if reply is not None:
            reply.set_exception((type(exc), exc, exc.__traceback__))
        if isinstance(exc, self.expected_errors):
            if reply is None:
                self.log.warning("expected error in tell", error=repr(exc))
            return False
        self._end(exc, None)
        return True

    async def _start_async(self, pending: Any) -> None:
        try:
            await pending
        except BaseException as exc:  # noqa: BLE001 - any start failure is an exit reason
            self._task = None
            if _being_cancelled(exc):
                self.cancelled = True
                exc = ActorKilled(f"{self.actor_path} cancelled")
            self._end(exc, None)
            return
        self._task = None
        self._started_with(None)
        self._drain()

    async def _serve_async(self, envelope: Envelope[Any], pending: Any) -> None:
        """Await a handler's coroutine, then serve the queue here until it is empty."""
        queue = self.actor_inbox.queue
        try:
            while True:
                try:
                    result = await pending
                except BaseException as exc:  # noqa: BLE001 - sorted by _settle_error
                    if _being_cancelled(exc):
                        raise
                    if self._settle_error(envelope, exc):
                        return
                else:
                    self.processed += 1
                    if envelope.reply_to is not None:
                        envelope.reply_to.set(result)
                while True:  # the next message; plain handlers run right here
                    if self._stop_now:
                        self._task = None
                        self._end(self._stop_reason, None)
                        return
                    if not queue:
                        self._task = None
                        self.actor_inbox.scheduled = False
                        return
                    envelope = queue.popleft()
                    if type(envelope.message) is _ActorStop:
                        self._task = None
                        self._end(None, envelope)
                        return
                    try:
                        pending = self._dispatch(envelope.message)
                    except BaseException as exc:  # noqa: BLE001 - sorted by _settle_error
                        if self._settle_error(envelope, exc):
                            return
                        continue
                    if type(pending) is CoroutineType:
                        break
                    self.processed += 1
                    if envelope.reply_to is not None:
                        envelope.reply_to.set(pending)
        except asyncio.CancelledError:
            # Ours after a shutdown timeout, or the loop's own teardown (asyncio.run cancelling
            # every task): either way an end, never a crash to restart. The message being handled
            # gets that answer too: its sender must not wait forever.
            self._task = None
            self.cancelled = True
            killed = ActorKilled(f"{self.actor_path} cancelled")
            reply = envelope.reply_to
            if reply is not None and not reply.done():
                reply.set_exception((ActorKilled, killed, None))
            self._end(killed, None)

    def _started_with(self, error: BaseException | None) -> None:
        self._start_error = error
        waiter = self._started_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(error)

    # -- the end --------------------------------------------------------------------------------
    def _end(self, reason: BaseException | None, stop_envelope: Envelope[Any] | None) -> None:
        """End this instance: on_stop/on_failure, then the leftovers go to the owner."""
        inbox = self.actor_inbox
        inbox.scheduled = True  # never pumped again
        inbox.stopped = True
        if self._start_error is _PENDING:
            self._started_with(reason)
        if self.register_in_registry:
            ActorRegistry.unregister(self.actor_ref)
        if reason is None:
            hook, args = self.on_stop, ()
        else:
            if not isinstance(reason, ActorKilled):
                # A crash loop logs its traceback once: the first crash since the child was last quiet
                # carries it, the repeats within the backoff window only say what and how often.
                owner = self._owner
                if owner is not None and owner.crash_is_repeat():
                    self.log.error("actor crashed again", error=repr(reason), restarts=owner.restarts)
                else:
                    self.log.error("actor crashed", error=repr(reason), exc_info=reason)
            hook, args = self.on_failure, (type(reason), reason, reason.__traceback__)
        try:
            result = self._call_hook(hook, *args)
            if type(result) is CoroutineType:
                self._task = inbox._loop.create_task(self._end_async(result, hook, reason, stop_envelope))  # type: ignore[union-attr]
                return
        except BaseException as exc:  # noqa: BLE001 - the actor is ending anyway; say so and go on
            self.log.error("error in stop hook", hook=hook.__name__, error=repr(exc))
        self._finish(reason, stop_envelope)

    async def _end_async(
        self, pending: Any, hook: Callable[..., Any], reason: BaseException | None, stop_envelope: Envelope[Any] | None
    ) -> None:
        try:
            await pending
        except BaseException as exc:  # noqa: BLE001 - the actor is ending anyway; say so and go on
            if isinstance(exc, asyncio.CancelledError):
                self.cancelled = True
            self.log.error("error in stop hook", hook=hook.__name__, error=repr(exc))
        self._task = None
        self._finish(reason, stop_envelope)

    def _finish(self, reason: BaseException | None, stop_envelope: Envelope[Any] | None) -> None:
        inbox = self.actor_inbox
        leftovers = inbox.drain()
        inbox.closed = True
        try:
            owner, hook = self._owner, self._exit_hook
            if owner is not None:
                owner._on_exit(self, reason, leftovers)
            elif hook is not None:
                hook(self, reason, leftovers)
            else:
                refuse(leftovers, ActorDeadError(f"{self.actor_path or self} stopped"), log=self.log)
            if stop_envelope is not None and stop_envelope.reply_to is not None:
                stop_envelope.reply_to.set(None)
        finally:
            self._ended = True
            waiter = self._stopped_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            self._after_exit()

    def _after_exit(self) -> None:
        """Release what the instance held beyond the loop (ThreadActor: its thread)."""


def _being_cancelled(exc: BaseException) -> bool:
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


# Names the runtime owns on every actor instance (see __init_subclass__); instance attributes set in
# a subclass's __init__ are checked when the actor is launched.
_RUNTIME_NAMES = frozenset(
    name for name in vars(AsyncioActor)
    if name.startswith("_") and not name.startswith("__") and name not in ("_create_actor_inbox", "_create_future")
)
