"""``KeyedSupervisor``: one child per key (per-user wallets), activated on first use.

- ``handle_for(key)`` is a dict lookup (O(1)); a miss activates the child right there, without an
  ``await``, so concurrent callers on the loop can never activate one key twice.
- Idle children are passivated by a sweeper every ``idle_timeout_s / 4``; past ``live_max`` running
  children the least recently used is passivated first. Passivation lets the child finish its
  queue; messages sent meanwhile wait in its handle and wake a fresh instance.
- Crashes restart the child (``child_restart``, backoff per child); the restart intensity counts
  all keys together, and past it the whole keyed supervisor fails to its parent (as OTP's
  simple_one_for_one). A handle kept from before a passivation re-activates its key on use.

Keyed children do not join pykka's registry (a list: O(n) unregister at 100k actors).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from teller.log import get_logger
from teller.runtime.errors import ActorUnavailable, SupervisorFailed
from teller.runtime.handle import FAILED, PASSIVATING, RESTARTING, RUNNING, STOPPED, Handle, Parent
from teller.runtime.policy import backoff_delay_s, next_attempt, should_restart, within_intensity
from teller.runtime.spec import KeyedSpec, Restart
from teller.runtime.status import Failure, NodeStatus, RuntimeContext, node_status

SWEEP_SCAN_MAX = 10_000
"""Children the idle sweeper looks at per round (it resumes next round)."""
STOP_BATCH_MAX = 1_000
"""Children stopped concurrently when the keyed supervisor stops."""


class KeyedSupervisor:
    kind = "supervisor"

    def __init__(self, spec: KeyedSpec, *, path: str, parent: Parent | None, ctx: RuntimeContext) -> None:
        self.spec = spec
        self.path = path
        self.parent = parent
        self.ctx = ctx
        self.state = STOPPED
        self.restarts = 0
        self.last_failure: Failure | None = None
        self.generation = 0
        self.attempt = 0
        self.last_crash_at: float | None = None
        self.activations = 0
        self.passivations = 0
        self._live: OrderedDict[Any, Handle] = OrderedDict()  # LRU order: oldest use first
        self._passivating = 0
        self._history: tuple[float, ...] = ()
        self._sweeper: asyncio.Task[None] | None = None
        self.log = get_logger(actor=path)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def restart(self) -> Restart:
        return self.spec.restart

    @property
    def shutdown_s(self) -> float:
        return self.spec.shutdown_s

    @property
    def live(self) -> int:
        """Children with an instance (running, restarting or finishing before passivation)."""
        return len(self._live)

    # -- the public surface ---------------------------------------------------------------------
    def handle_for(self, key: Any) -> Handle:
        """The child for ``key``, activated on first use. Call on the loop thread."""
        handle = self._live.get(key)
        if handle is not None:
            self._live.move_to_end(key)
            handle.last_used = self.ctx.clock()
            return handle
        return self._activate(key, None)

    def _activate(self, key: Any, handle: Handle | None) -> Handle:
        if self.state is not RUNNING:
            raise ActorUnavailable(f"{self.path} is {self.state}")
        if len(self._live) - self._passivating >= self.spec.live_max:
            self._passivate_oldest()
        if handle is None:
            handle = Handle(spec=self.spec, path=f"{self.path}/{key}", parent=self, ctx=self.ctx, key=key)
        handle.last_used = self.ctx.clock()
        handle.seen_processed = handle.processed
        self._live[key] = handle
        try:
            handle.start_nowait()
        except BaseException:
            del self._live[key]
            raise
        self.activations += 1
        return handle

    def _reactivate(self, stale: Handle) -> Handle:
        """A handle kept across its passivation was used: route to the key's live child."""
        current = self._live.get(stale.key)
        if current is not None:
            return current
        return self._activate(stale.key, stale)

    # -- passivation ----------------------------------------------------------------------------
    def _passivate_oldest(self) -> None:
        for handle in self._live.values():
            if handle.state is RUNNING:
                self._passivate(handle)
                return

    def _passivate(self, handle: Handle) -> None:
        handle.passivate()
        self._passivating += 1

    def child_passivated(self, handle: Handle) -> None:
        """Called by a handle whose instance finished its queue and stopped."""
        self._passivating -= 1
        self.passivations += 1
        if handle._buffer and self.state is RUNNING:  # messages arrived meanwhile: wake it again
            handle.last_used = self.ctx.clock()
            handle.start_nowait()
            return
        handle.state = STOPPED
        if self._live.get(handle.key) is handle:
            del self._live[handle.key]

    async def _sweep(self) -> None:
        interval_s = self.spec.idle_timeout_s / 4
        while True:
            await asyncio.sleep(interval_s)
            self.sweep_idle()

    def sweep_idle(self) -> None:
        """Passivate children idle for ``idle_timeout_s`` (a child that processed since counts as used)."""
        now = self.ctx.clock()
        idle_before = now - self.spec.idle_timeout_s
        used: list[Any] = []
        for scanned, (key, handle) in enumerate(self._live.items()):
            if scanned >= SWEEP_SCAN_MAX or handle.last_used > idle_before:
                break
            if handle.state is not RUNNING:
                continue
            processed = handle.processed
            if processed != handle.seen_processed or handle.mailbox:
                handle.seen_processed = processed
                used.append(key)
            else:
                self._passivate(handle)
        for key in used:
            self._live[key].last_used = now
            self._live.move_to_end(key)

    # -- crashes --------------------------------------------------------------------------------
    def child_exit(self, child: Handle, reason: BaseException | None, generation: int) -> None:
        if generation != child.generation or self.state is not RUNNING:
            return
        if not should_restart(child.restart, reason):
            if self._live.get(child.key) is child:
                del self._live[child.key]
            child.state = STOPPED  # a later message re-activates it through the activator
            child._refuse_buffer(ActorUnavailable(f"{child.path} stopped", reason))
            return
        now = self.ctx.clock()
        allowed, self._history = within_intensity(self._history, now, self.spec.intensity)
        if not allowed:
            self.log.error("restart intensity exceeded", child=child.path, error=repr(reason))
            self.state = RESTARTING  # no more restarts from here; _fail reports to the parent
            self.ctx.loop.create_task(self._fail(reason))
            return
        child.attempt = next_attempt(child.attempt, child.last_crash_at, now, self.spec.backoff)
        child.last_crash_at = now
        delay_s = backoff_delay_s(child.attempt, self.spec.backoff, self.ctx.draw())
        if delay_s <= 0:
            self._restart_child(child, child.generation)
        else:
            self.ctx.loop.call_later(delay_s, self._restart_child, child, child.generation)

    def _restart_child(self, child: Handle, generation: int) -> None:
        if child.generation != generation or child.state is not RESTARTING or self.state is not RUNNING:
            return
        child.restarts += 1
        try:
            child.start_nowait()  # an on_start failure comes back through child_exit
        except Exception as exc:  # noqa: BLE001 - the factory itself failed: one more exit
            child.state = RESTARTING
            self.child_exit(child, exc, child.generation)
            return
        self.ctx.restarted(child.path, child.last_failure, child.restarts)

    async def _fail(self, reason: BaseException | None) -> None:
        self.last_failure = Failure.of(SupervisorFailed(f"{self.path}: {reason!r}"))
        await self.stop(restarting=False)
        self.state = FAILED
        error = SupervisorFailed(f"{self.path} exceeded its restart intensity (last: {reason!r})")
        if self.parent is not None:
            self.parent.child_exit(self, error, self.generation)
        elif self.ctx.on_root_failure is not None:
            self.ctx.on_root_failure(error)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.generation += 1
        self._history = ()
        self.state = RUNNING
        self._sweeper = self.ctx.loop.create_task(self._sweep())

    async def stop(self, *, restarting: bool, graceful: bool = False) -> None:
        """Stop every live child (keys re-activate on demand after a restart, so none buffer)."""
        self.state = RESTARTING if restarting else STOPPED
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
        handles = list(self._live.values())
        self._live.clear()
        self._passivating = 0
        for start in range(0, len(handles), STOP_BATCH_MAX):
            batch = handles[start : start + STOP_BATCH_MAX]
            await asyncio.gather(*(handle.stop(restarting=False) for handle in batch))

    def abandon(self, reason: BaseException | None, *, failed: bool) -> None:
        self.state = FAILED if failed else STOPPED

    def status(self) -> NodeStatus:
        return node_status(
            name=self.name,
            kind="supervisor",
            strategy="keyed",
            state=RUNNING if self.state is PASSIVATING else self.state,
            restarts=self.restarts,
            last_failure=self.last_failure,
            mailbox=0,
            processed=self.activations,
            children=[],
            live=len(self._live),
            live_max=self.spec.live_max,
            activations=self.activations,
            passivations=self.passivations,
        )
