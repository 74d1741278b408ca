"""What a flow gets from the app (AppContext) and gives back (Flow)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from teller.assets import AssetRegistry
from teller.config import Settings
from teller.errors import ServiceUnavailable
from teller.http.routing import Route
from teller.runtime import ActorRuntimeError, Handle, Tree

__all__ = ["AppContext", "Flow", "SLOTS", "ask_actor"]

# Where flows may put children, in the root's start order (stop is the reverse).
SLOTS = ("signer", "chains", "withdrawals", "payments", "outbox-relay", "notifier", "reconciler")


@dataclass(slots=True)
class AppContext:
    """The running Teller's shared parts. ``tree`` is set once the tree has started."""

    settings: Settings
    store: Any
    assets: AssetRegistry
    overrides: Mapping[str, Any] = field(default_factory=dict)  # tests swap clients in by name
    subscribers: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)  # in-process events
    tree: Tree | None = None

    def handle(self, path: str) -> Handle:
        if self.tree is None:
            raise ServiceUnavailable("Teller is starting")
        return self.tree.handle(path)

    def wallet(self, user_id: int) -> Handle:
        if self.tree is None:
            raise ServiceUnavailable("Teller is starting")
        return self.tree.keyed("wallets").handle_for(user_id)


@dataclass(slots=True)
class Flow:
    name: str
    children: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    status: Callable[[], Awaitable[dict[str, Any]]] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    services: Mapping[str, Any] = field(default_factory=dict)


async def ask_actor(awaitable: Awaitable[Any], *, timeout_s: float) -> Any:
    """Await an actor's answer for an HTTP request: a busy or restarting actor is a 503, never a hang."""
    try:
        async with asyncio.timeout(timeout_s):
            return await awaitable
    except TimeoutError as exc:
        raise ServiceUnavailable("the request timed out; try again") from exc
    except ActorRuntimeError as exc:
        raise ServiceUnavailable("the service is busy or restarting; try again") from exc
