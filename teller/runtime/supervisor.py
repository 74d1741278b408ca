"""``Supervisor``: OTP supervision of an ordered list of children (actors, supervisors, keyed).

Child exits arrive as events on the supervisor's own queue and are handled one at a time by its
task, so the supervisor keeps serving while a restart waits out its backoff (the delayed restart is
posted back as an event, like OTP's retries). The restart decision is ``policy``'s pure functions;
intensity is checked before any restart; past it the supervisor stops its children (reverse order),
marks itself failed and reports the exit to its parent, which decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from teller.log import get_logger
from teller.runtime.errors import StartFailed, SupervisorFailed
from teller.runtime.handle import FAILED, RESTARTING, RUNNING, STOPPED, Handle, Parent
from teller.runtime.policy import affected, backoff_delay_s, next_attempt, should_restart, within_intensity
from teller.runtime.spec import ChildSpec, KeyedSpec, Restart, Spec, SupervisorSpec
from teller.runtime.status import Failure, NodeStatus, RuntimeContext, node_status

Node = Any  # Handle | Supervisor | KeyedSupervisor: the same small protocol, duck-typed


def build_node(spec: Spec, *, path: str, parent: Parent, ctx: RuntimeContext) -> Node:
    """The runtime record for a spec (one per path, kept across restarts)."""
    if isinstance(spec, SupervisorSpec):
        return Supervisor(spec, path=path, parent=parent, ctx=ctx)
    if isinstance(spec, KeyedSpec):
        from teller.runtime.keyed import KeyedSupervisor

        return KeyedSupervisor(spec, path=path, parent=parent, ctx=ctx)
    assert isinstance(spec, ChildSpec)
    return Handle(spec=spec, path=path, parent=parent, ctx=ctx)


class Supervisor:
    kind = "supervisor"

    def __init__(self, spec: SupervisorSpec, *, path: str, parent: Parent | None, ctx: RuntimeContext) -> None:
        self.spec = spec
        self.path = path
        self.parent = parent
        self.ctx = ctx
        self.children: list[Node] = [
            build_node(child, path=f"{path}/{child.name}", parent=self, ctx=ctx) for child in spec.children
        ]
        self.state = STOPPED
        self.restarts = 0
        self.last_failure: Failure | None = None
        self.generation = 0
        self.attempt = 0
        self.last_crash_at: float | None = None
        self.processed = 0
        self._history: tuple[float, ...] = ()
        # One event per child exit or due restart: bounded by the number of child incarnations.
        self._events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
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

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the children in order; if one fails, stop the started ones in reverse and raise."""
        self.generation += 1
        self.state = RESTARTING
        self._history = ()
        self._events = asyncio.Queue()
        for index, child in enumerate(self.children):
            try:
                await child.start()
            except BaseException as exc:
                await self._stop_children(self.children[:index], restarting=True)
                if isinstance(exc, Exception) and not isinstance(exc, StartFailed):
                    raise StartFailed(f"{child.path} failed to start: {exc!r}") from exc
                raise
        self.state = RUNNING
        self._task = self.ctx.loop.create_task(self._serve())

    async def stop(self, *, restarting: bool, graceful: bool = False) -> None:
        """Stop the event task, then the children in reverse start order."""
        self.state = RESTARTING if restarting else STOPPED
        await self._halt()
        await self._stop_children(self.children, restarting=restarting)

    async def _halt(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait({task})

    async def _stop_children(self, children: Sequence[Node], *, restarting: bool) -> None:
        for child in reversed(children):
            await child.stop(restarting=restarting)

    def abandon(self, reason: BaseException | None, *, failed: bool) -> None:
        self.state = FAILED if failed else STOPPED
        for child in self.children:
            child.abandon(reason, failed=False)

    # -- events ---------------------------------------------------------------------------------
    def child_exit(self, child: Node, reason: BaseException | None, generation: int) -> None:
        """Called on the loop by a child that ended on its own (never for stops we asked for)."""
        if self.state is RUNNING:
            self._events.put_nowait(("exit", child, reason, generation))

    def _post_restart(self, indices: range, generation: int) -> None:
        if self.generation == generation and self.state is RUNNING:
            self._events.put_nowait(("restart", indices))

    async def _serve(self) -> None:
        while True:
            event = await self._events.get()
            self.processed += 1
            try:
                if event[0] == "exit":
                    await self._on_exit(event[1], event[2], event[3])
                else:
                    await self._restart_children(event[1])
            except Exception as exc:  # noqa: BLE001 - a bug here must fail this supervisor, loudly
                self.log.error("supervisor error", error=repr(exc), exc_info=exc)
                await self._fail(exc)
            if self.state is not RUNNING:
                return

    async def _on_exit(self, child: Node, reason: BaseException | None, generation: int) -> None:
        if generation != child.generation or child.state is RUNNING:
            return  # an exit of an instance we already replaced
        if reason is not None:
            child.last_failure = Failure.of(reason)
        if not should_restart(child.restart, reason):
            child.abandon(reason, failed=False)
            return
        now = self.ctx.clock()
        allowed, self._history = within_intensity(self._history, now, self.spec.intensity)
        if not allowed:
            self.log.error("restart intensity exceeded", child=child.path, error=repr(reason))
            await self._fail(reason)
            return
        child.state = RESTARTING
        child.attempt = next_attempt(child.attempt, child.last_crash_at, now, self.spec.backoff)
        child.last_crash_at = now
        indices = affected(self.spec.strategy, self.children.index(child), len(self.children))
        for index in reversed(indices):
            sibling = self.children[index]
            if sibling is not child and sibling.state is RUNNING:
                await sibling.stop(restarting=True)
        delay_s = backoff_delay_s(child.attempt, self.spec.backoff, self.ctx.draw())
        if delay_s <= 0:
            await self._restart_children(indices)
        else:
            self.ctx.loop.call_later(delay_s, self._post_restart, indices, self.generation)

    async def _restart_children(self, indices: range) -> None:
        for index in indices:
            child = self.children[index]
            if child.state is not RESTARTING:
                continue  # running already, or given up on
            if child.restart is Restart.TEMPORARY:
                child.abandon(None, failed=False)  # a temporary sibling stopped by the strategy
                continue
            child.restarts += 1
            try:
                await child.start()
            except Exception as exc:  # noqa: BLE001 - a failed restart is one more exit
                child.state = RESTARTING
                self._events.put_nowait(("exit", child, exc, child.generation))
                return
            self.ctx.restarted(child.path, child.last_failure, child.restarts)

    async def _fail(self, reason: BaseException | None) -> None:
        self.state = FAILED
        self.last_failure = Failure.of(SupervisorFailed(f"{self.path}: {reason!r}"))
        await self._stop_children(self.children, restarting=True)
        error = SupervisorFailed(f"{self.path} exceeded its restart intensity (last: {reason!r})")
        if self.parent is not None:
            self.parent.child_exit(self, error, self.generation)
        else:
            self.abandon(error, failed=True)
            if self.ctx.on_root_failure is not None:
                self.ctx.on_root_failure(error)

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> NodeStatus:
        return node_status(
            name=self.name,
            kind="supervisor",
            strategy=str(self.spec.strategy),
            state=self.state,
            restarts=self.restarts,
            last_failure=self.last_failure,
            mailbox=self._events.qsize(),
            processed=self.processed,
            children=[child.status() for child in self.children],
        )

