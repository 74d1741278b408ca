"""``Handle``: a stable address for one supervised actor, valid across its restarts.

A handle is the runtime record of one child (the spec is what was asked for; the handle is what
runs): the current actor instance, its state, its restart count and last failure, and a bounded
buffer for messages sent while no instance can take them (restarting, or passivating). Messages
still queued in a crashed instance's mailbox go back to the front of that buffer and reach the next
instance; nothing is dropped silently: past the bound the sender gets ``RestartBufferFull``, and a
child that will not come back answers ``ActorUnavailable``.

All state changes happen on the loop thread; ``tell``/``ask``/``call`` from another thread hop to
the loop first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pykka._envelope import Envelope

from teller.runtime.actor import AsyncioActor, Call
from teller.runtime.errors import ActorUnavailable, MailboxFull, RestartBufferFull
from teller.runtime.future import AsyncioFuture
from teller.runtime.mailbox import refuse
from teller.runtime.spec import ChildSpec, KeyedSpec, Restart
from teller.runtime.status import Failure, NodeStatus, RuntimeContext, node_status

if TYPE_CHECKING:
    from collections.abc import Awaitable

RUNNING = "running"
RESTARTING = "restarting"
PASSIVATING = "passivating"  # reported as "running": it is finishing its queue before it sleeps
STOPPED = "stopped"
FAILED = "failed"

_NO_KEY: Any = object()
_get_ident = threading.get_ident


class Parent(Protocol):
    def child_exit(self, child: Any, reason: BaseException | None, generation: int) -> None: ...


class Handle:
    """Send to the current instance of a child; buffer while it restarts; refuse past the bound."""

    __slots__ = (
        "spec", "path", "parent", "ctx", "key", "state", "restarts", "last_failure", "generation",
        "attempt", "last_crash_at", "last_used", "seen_processed",
        "_actor", "_current", "_buffer", "_processed_before", "_stopping", "_awaiting_start",
    )  # fmt: skip

    kind = "actor"

    def __init__(
        self,
        *,
        spec: ChildSpec | KeyedSpec,
        path: str,
        parent: Parent,
        ctx: RuntimeContext,
        key: Any = _NO_KEY,
    ) -> None:
        self.spec = spec
        self.path = path
        self.parent = parent
        self.ctx = ctx
        self.key = key
        self.state = STOPPED
        self.restarts = 0
        self.last_failure: Failure | None = None
        self.generation = 0
        self.attempt = 0
        self.last_crash_at: float | None = None
        self.last_used = 0.0
        self.seen_processed = 0
        self._actor: AsyncioActor | None = None  # where messages go now (None: buffer or refuse)
        self._current: AsyncioActor | None = None  # the live instance, even while it stops
        self._buffer: deque[Envelope[Any]] | None = None
        self._processed_before = 0
        self._stopping = False
        self._awaiting_start = False

    def crash_is_repeat(self) -> bool:
        """Whether a crash now is a repeat: the last one was within the parent's backoff reset window."""
        if self.last_crash_at is None:
            return False
        backoff = getattr(getattr(self.parent, "spec", None), "backoff", None)
        window_s = backoff.reset_after_s if backoff is not None else 0.0
        return self.ctx.clock() - self.last_crash_at < window_s

    def __repr__(self) -> str:
        return f"<Handle {self.path} {self.state}>"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def activator(self) -> Callable[[Handle], Handle] | None:
        """A keyed child's way back to its key's live child (kept on the parent, not per handle)."""
        return None if self.key is _NO_KEY else self.parent._reactivate  # type: ignore[attr-defined]

    @property
    def restart(self) -> Restart:
        return self.spec.child_restart if isinstance(self.spec, KeyedSpec) else self.spec.restart

    @property
    def shutdown_s(self) -> float:
        return self.spec.child_shutdown_s if isinstance(self.spec, KeyedSpec) else self.spec.shutdown_s

    # -- the public surface ---------------------------------------------------------------------
    def tell(self, message: Any) -> None:
        """Fire and forget. Raises ``MailboxFull``/``RestartBufferFull``/``ActorUnavailable``."""
        envelope = Envelope(message)
        if _get_ident() == self.ctx.thread:
            self._deliver(envelope)
        else:
            self.ctx.loop.call_soon_threadsafe(self._deliver_or_answer, envelope)

    def ask(self, message: Any, *, timeout_s: float | None = None) -> Awaitable[Any]:
        """Send and get an awaitable reply (the handler's result or its exception)."""
        future: AsyncioFuture[Any] = AsyncioFuture()
        envelope = Envelope(message, reply_to=future)
        if _get_ident() == self.ctx.thread:
            self._deliver(envelope)
        else:
            self.ctx.loop.call_soon_threadsafe(self._deliver_or_answer, envelope)
        return future if timeout_s is None else future.wait(timeout_s)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Run ``actor.method(*args, **kwargs)`` (sync or async) inside the actor; await the result."""
        if method.startswith("_"):
            raise AttributeError(f"{self.path}: private method {method!r} cannot be called")
        return self.ask(Call(method, args, kwargs))

    # -- delivery -------------------------------------------------------------------------------
    def _deliver(self, envelope: Envelope[Any]) -> None:
        actor = self._actor
        if actor is not None:
            actor.actor_inbox.put(envelope)
            return
        state = self.state
        if state is RESTARTING or state is PASSIVATING:
            buffer = self._buffer
            if buffer is None:
                buffer = self._buffer = deque()
            if len(buffer) >= self.spec.buffer_max:
                raise RestartBufferFull(f"{self.path} is restarting and its buffer is full")
            buffer.append(envelope)
            return
        if self.key is not _NO_KEY:  # a keyed child kept across its passivation: re-activate
            target = self.parent._reactivate(self)  # type: ignore[attr-defined]
            if target._actor is not None or target.state is not STOPPED:
                target._deliver(envelope)
                return
        raise ActorUnavailable(f"{self.path} is {state}")

    def _deliver_or_answer(self, envelope: Envelope[Any]) -> None:
        try:
            self._deliver(envelope)
        except (MailboxFull, ActorUnavailable) as exc:
            refuse([envelope], exc, log=_log(self.path))

    # -- lifecycle, driven by the parent --------------------------------------------------------
    def _spawn(self) -> AsyncioActor:
        spec = self.spec
        if isinstance(spec, KeyedSpec):
            actor = spec.factory(self.key)
            actor.register_in_registry = False  # type: ignore[misc]  # pykka's list: O(n) unregister
        else:
            actor = spec.factory()
        self.generation += 1
        actor._launch(path=self.path, owner=self)
        self._current = actor
        self._actor = actor
        self.state = RUNNING
        self._stopping = False
        buffer = self._buffer
        if buffer:
            put = actor.actor_inbox.put_unbounded  # already accepted: the bound was checked then
            for envelope in buffer:
                put(envelope)
        self._buffer = None
        return actor

    def start_nowait(self) -> None:
        """Start an instance without waiting for ``on_start`` (its failure is reported as an exit)."""
        self._awaiting_start = False
        self._spawn()

    async def start(self) -> None:
        """Start an instance and wait for ``on_start``; raise what it raised."""
        self._awaiting_start = True
        self.state = RESTARTING
        try:
            actor = self._spawn()
            error = await actor.wait_started()
        finally:
            self._awaiting_start = False
        if error is not None:
            raise error

    async def stop(self, *, restarting: bool, graceful: bool = False) -> None:
        """Stop the instance. ``restarting``: keep buffering for the next one; else refuse."""
        actor = self._current
        self._actor = None
        self._stopping = True
        self.state = RESTARTING if restarting else STOPPED
        if actor is not None:
            actor.request_stop(graceful=graceful)
            await actor.wait_stopped(self.shutdown_s)
        if not restarting:
            self._refuse_buffer(ActorUnavailable(f"{self.path} stopped"))

    def passivate(self) -> None:
        """Ask the instance to finish its queue and stop; new messages wait in the buffer."""
        actor = self._current
        if actor is None or self.state is not RUNNING:
            return
        self._actor = None
        self._stopping = True
        self.state = PASSIVATING
        actor.request_stop(graceful=True)

    def abandon(self, reason: BaseException | None, *, failed: bool) -> None:
        """The parent will not restart this child: answer everything waiting."""
        self.state = FAILED if failed else STOPPED
        self._refuse_buffer(ActorUnavailable(f"{self.path} is {self.state}", reason))

    def _refuse_buffer(self, error: BaseException) -> None:
        buffer, self._buffer = self._buffer, None
        if buffer:
            refuse(list(buffer), error, log=_log(self.path))

    def _on_exit(self, actor: AsyncioActor, reason: BaseException | None, leftovers: list[Envelope[Any]]) -> None:
        if actor is not self._current:
            refuse(leftovers, ActorUnavailable(f"{self.path}: stale instance"), log=_log(self.path))
            return
        self._current = None
        if self._actor is actor:
            self._actor = None
        self._processed_before += actor.processed
        if leftovers:  # older than anything buffered since: they go first
            self._buffer = deque(leftovers + list(self._buffer or ()))
        if reason is not None:
            self.last_failure = Failure.of(reason)
        if self._stopping:
            if self.state is PASSIVATING:
                self.parent.child_passivated(self)  # type: ignore[attr-defined]
            return
        if actor.cancelled:  # the loop is being torn down: do not restart into it
            self.abandon(reason, failed=False)
            return
        self.state = RESTARTING
        if actor.start_failed and self._awaiting_start:
            return  # start() raises it to the parent
        self.parent.child_exit(self, reason, self.generation)

    # -- status ---------------------------------------------------------------------------------
    @property
    def processed(self) -> int:
        actor = self._current
        return self._processed_before + (actor.processed if actor is not None else 0)

    @property
    def mailbox(self) -> int:
        actor = self._current
        return (len(actor.actor_inbox) if actor is not None else 0) + len(self._buffer or ())

    @property
    def actor(self) -> AsyncioActor | None:
        """The current instance (for tests and introspection; send through the handle)."""
        return self._current

    def status(self) -> NodeStatus:
        return node_status(
            name=self.name,
            kind="actor",
            state=RUNNING if self.state is PASSIVATING else self.state,
            restarts=self.restarts,
            last_failure=self.last_failure,
            mailbox=self.mailbox,
            processed=self.processed,
            children=[],
        )


def _log(path: str) -> Any:
    from teller.log import get_logger

    return get_logger(actor=path)
