"""``AsyncioActor``: a pykka actor that runs as a task on the asyncio loop, not as a thread.

pykka's ``ActorRef.tell/ask``, proxies and (optionally) the registry keep working: the class picks
its own inbox (``Mailbox``) and future (``AsyncioFuture``), and ``_start_actor_loop`` starts a task.
One message at a time; a handler may be ``async def`` (the next message waits until it returns).

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
from collections.abc import Callable
from types import CoroutineType
from typing import Any, ClassVar

import pykka
from pykka import ActorDeadError, ActorRegistry
from pykka._envelope import Envelope
from pykka._introspection import get_attr_directly
from pykka.messages import ProxyCall, _ActorStop

from teller.log import get_logger
from teller.runtime.errors import ActorKilled
from teller.runtime.future import AsyncioFuture
from teller.runtime.mailbox import MAILBOX_MAX_DEFAULT, Mailbox, refuse

ExitHook = Callable[["AsyncioActor", BaseException | None, list[Envelope[Any]]], None]
"""Called on the loop when an actor instance ends: (actor, reason or None, unhandled envelopes)."""


class Call:
    """Message: invoke ``name(*args, **kwargs)`` on the actor instance, inside the actor."""

    __slots__ = ("name", "args", "kwargs")

    def __init__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.args = args
        self.kwargs = kwargs


class StoppedFlag:
    """The ``actor_stopped`` flag pykka reads (``is_set``), without a lock: set on the loop only."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True


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

    @staticmethod
    def _create_actor_inbox() -> Mailbox:
        return Mailbox(MAILBOX_MAX_DEFAULT)

    @staticmethod
    def _create_future() -> AsyncioFuture[Any]:
        return AsyncioFuture()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # pykka's threading.Event is ~8 GC-tracked objects; only set/is_set are used on the loop.
        self.actor_stopped = self._actor_ref.actor_stopped = StoppedFlag()  # type: ignore[assignment]
        self.actor_inbox.bound = self.mailbox_max
        self.processed = 0
        self._exit_hook: ExitHook | None = None
        self._stop_now = False
        self.cancelled = False
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[BaseException | None] | None = None
        self._log: Any = None

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
        self.actor_inbox.bind(loop)
        self.actor_inbox.owner = self.actor_path
        self._started = loop.create_future()
        self._task = loop.create_task(self._run())

    def _launch(self, *, path: str, exit_hook: ExitHook | None) -> None:
        """Start under an owner: the runtime's equivalent of ``Actor.start()``."""
        self.actor_path = path
        self._exit_hook = exit_hook
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

    async def wait_started(self) -> BaseException | None:
        """None once ``on_start`` returned, else the exception it raised."""
        assert self._started is not None
        return await asyncio.shield(self._started)

    async def wait_stopped(self, timeout_s: float | None) -> None:
        """Wait for the task to end; past ``timeout_s`` cancel it (exit reason ``ActorKilled``)."""
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    # -- hooks, overridden by ThreadActor to run on its thread ----------------------------------
    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        return hook(*args)

    def _dispatch(self, msg: Any) -> Any:
        kind = type(msg)
        if kind is Call:
            return getattr(self, msg.name)(*msg.args, **msg.kwargs)
        if kind is ProxyCall:
            return get_attr_directly(self, msg.attr_path)(*msg.args, **msg.kwargs)
        return self._handle_receive(msg)

    # -- the loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        reason: BaseException | None = None
        stop_envelope: Envelope[Any] | None = None
        started = self._started
        assert started is not None
        try:
            try:
                result = self._call_hook(self.on_start)
                if type(result) is CoroutineType:
                    await result
            except BaseException as exc:  # noqa: BLE001 - any start failure is an exit reason
                if _being_cancelled(exc):
                    raise
                reason = exc
                started.set_result(exc)
                return
            started.set_result(None)
            reason, stop_envelope = await self._serve()
        except asyncio.CancelledError:
            # Ours after a shutdown timeout, or the loop's own teardown (asyncio.run cancelling
            # every task): either way an end, never a crash to restart.
            self.cancelled = True
            reason = ActorKilled(f"{self.actor_path} cancelled")
        finally:
            if not started.done():
                started.set_result(reason)
            await self._exit(reason, stop_envelope)

    async def _serve(self) -> tuple[BaseException | None, Envelope[Any] | None]:
        inbox = self.actor_inbox
        queue = inbox.queue
        expected = self.expected_errors
        while True:
            if self._stop_now:
                return None, None
            if not queue:
                await inbox.wait()
                continue
            envelope = queue.popleft()
            msg = envelope.message
            if type(msg) is _ActorStop:
                return None, envelope
            try:
                result = self._dispatch(msg)
                if type(result) is CoroutineType:
                    result = await result
            except BaseException as exc:  # noqa: BLE001 - sorted below: answer, crash or kill
                if _being_cancelled(exc):
                    raise
                self.processed += 1
                reply = envelope.reply_to
                if reply is not None:
                    reply.set_exception((type(exc), exc, exc.__traceback__))
                if isinstance(exc, expected):
                    if reply is None:
                        self.log.warning("expected error in tell", error=repr(exc))
                    continue
                return exc, None
            self.processed += 1
            if envelope.reply_to is not None:
                envelope.reply_to.set(result)

    async def _exit(self, reason: BaseException | None, stop_envelope: Envelope[Any] | None) -> None:
        self.actor_stopped.set()
        if self.register_in_registry:
            ActorRegistry.unregister(self.actor_ref)
        if reason is None:
            await self._run_end_hook(self.on_stop)
        else:
            if not isinstance(reason, ActorKilled):
                self.log.error("actor crashed", error=repr(reason), exc_info=reason)
            await self._run_end_hook(self.on_failure, type(reason), reason, reason.__traceback__)
        leftovers = self.actor_inbox.drain()
        self.actor_inbox.closed = True
        hook = self._exit_hook
        if hook is not None:
            hook(self, reason, leftovers)
        else:
            refuse(leftovers, ActorDeadError(f"{self.actor_path or self} stopped"), log=self.log)
        if stop_envelope is not None and stop_envelope.reply_to is not None:
            stop_envelope.reply_to.set(None)

    async def _run_end_hook(self, hook: Callable[..., Any], *args: Any) -> None:
        try:
            result = self._call_hook(hook, *args)
            if type(result) is CoroutineType:
                await result
        except Exception as exc:  # noqa: BLE001 - the actor is ending anyway; say so and go on
            self.log.error("error in stop hook", hook=hook.__name__, error=repr(exc))


def _being_cancelled(exc: BaseException) -> bool:
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
