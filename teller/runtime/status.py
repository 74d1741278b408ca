"""The tree as data: failure records, the runtime context nodes share, and the ``Node`` shape.

The shape is ``Node`` in docs/API.md (``/ops/status``): name, kind, strategy, state, restarts,
last_failure {at, error} | null, mailbox, processed, children.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NodeStatus = dict[str, Any]


@dataclass(frozen=True)
class Failure:
    at: datetime
    error: str

    @classmethod
    def of(cls, reason: BaseException) -> Failure:
        return cls(at=datetime.now(UTC), error=f"{type(reason).__name__}: {reason}"[:500])

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at.isoformat().replace("+00:00", "Z"), "error": self.error}


@dataclass(frozen=True)
class RestartEvent:
    """What the ``on_restart`` hook receives (e.g. to count restarts in Prometheus)."""

    path: str
    error: str | None
    restarts: int


@dataclass
class RuntimeContext:
    """What every node of one tree shares: its loop, its thread, the hooks, a clock, a die."""

    loop: asyncio.AbstractEventLoop
    on_restart: Callable[[RestartEvent], None] | None = None
    on_root_failure: Callable[[BaseException], None] | None = None
    thread: int = field(default_factory=threading.get_ident)
    started_at: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = time.monotonic
    draw: Callable[[], float] = random.random

    def restarted(self, path: str, failure: Failure | None, restarts: int) -> None:
        if self.on_restart is not None:
            error = None if failure is None else failure.error
            self.on_restart(RestartEvent(path=path, error=error, restarts=restarts))


def node_status(
    *,
    name: str,
    kind: str,
    state: str,
    restarts: int,
    last_failure: Failure | None,
    mailbox: int,
    processed: int,
    children: list[NodeStatus],
    strategy: str | None = None,
    **extra: Any,
) -> NodeStatus:
    node: NodeStatus = {"name": name, "kind": kind}
    if strategy is not None:
        node["strategy"] = strategy
    node.update(
        state=state,
        restarts=restarts,
        last_failure=None if last_failure is None else last_failure.as_dict(),
        mailbox=mailbox,
        processed=processed,
        children=children,
    )
    node.update(extra)
    return node
