"""``start_tree``/``Tree``: the small top-level API the app uses.

Paths are relative to the root and use the spec names: ``tree.handle("withdrawals/ethereum")``,
``tree.keyed("wallets").handle_for(user_id)``. Handles and keyed supervisors are looked up once
(O(1), a dict) and stay valid for the tree's life, across every restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from teller.log import get_logger
from teller.runtime.errors import StartFailed
from teller.runtime.handle import Handle
from teller.runtime.keyed import KeyedSupervisor
from teller.runtime.status import NodeStatus, RestartEvent, RuntimeContext
from teller.runtime.supervisor import Supervisor
from teller.runtime.spec import SupervisorSpec


class Tree:
    """A started supervisor tree."""

    def __init__(self, root: Supervisor, ctx: RuntimeContext) -> None:
        self.root = root
        self._ctx = ctx
        self._nodes: dict[str, Any] = {}
        self._index(root, "")
        self.failed = asyncio.Event()
        """Set when the root supervisor itself gives up (the app should exit non-zero)."""

    def _index(self, node: Any, prefix: str) -> None:
        for child in getattr(node, "children", ()):
            path = f"{prefix}{child.name}"
            self._nodes[path] = child
            self._index(child, f"{path}/")

    def node(self, path: str) -> Any:
        try:
            return self._nodes[path.strip("/")]
        except KeyError:
            raise KeyError(f"no child at {path!r}; known: {sorted(self._nodes)}") from None

    def handle(self, path: str) -> Handle:
        """The stable handle of the actor at ``path`` (e.g. ``"chains/ethereum"``)."""
        node = self.node(path)
        if not isinstance(node, Handle):
            raise TypeError(f"{path!r} is a {type(node).__name__}, not an actor")
        return node

    def keyed(self, path: str) -> KeyedSupervisor:
        """The keyed supervisor at ``path``: call ``.handle_for(key)`` on it."""
        node = self.node(path)
        if not isinstance(node, KeyedSupervisor):
            raise TypeError(f"{path!r} is a {type(node).__name__}, not a keyed supervisor")
        return node

    def status(self) -> NodeStatus:
        """``{"uptime_s": ..., "tree": Node}`` in the shape of /ops/status (docs/API.md)."""
        return {"uptime_s": round(self._ctx.clock() - self._ctx.started_at, 3), "tree": self.root.status()}

    @property
    def running(self) -> bool:
        return self.root.state == "running"

    async def stop(self) -> None:
        """Stop every child in reverse start order; later messages get ``ActorUnavailable``."""
        await self.root.stop(restarting=False)
        self.root.abandon(None, failed=False)


async def start_tree(
    root: SupervisorSpec,
    *,
    on_restart: Callable[[RestartEvent], None] | None = None,
) -> Tree:
    """Start ``root`` and its children in order on the running loop; raise ``StartFailed`` if one fails.

    ``on_restart`` is called (on the loop) after every restart, e.g. to bump a Prometheus counter.
    """
    loop = asyncio.get_running_loop()
    ctx = RuntimeContext(loop=loop, on_restart=on_restart)
    supervisor = Supervisor(root, path=f"/{root.name}", parent=None, ctx=ctx)
    tree = Tree(supervisor, ctx)

    def root_failed(error: BaseException) -> None:
        get_logger(actor=supervisor.path).critical("root supervisor failed", error=repr(error))
        tree.failed.set()

    ctx.on_root_failure = root_failed
    try:
        await supervisor.start()
    except Exception as exc:
        await supervisor.stop(restarting=False)
        supervisor.abandon(exc, failed=True)
        if isinstance(exc, StartFailed):
            raise
        raise StartFailed(f"{root.name} failed to start: {exc!r}") from exc
    return tree
