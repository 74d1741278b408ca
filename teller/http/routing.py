"""Routes declared once, with what the OpenAPI document needs to describe them.

The server registers exactly these routes and the OpenAPI document is generated from exactly these
routes, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Route", "Param"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" | "query" | "header"
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    security: str | None = "user"        # "user" | "ops" | None
    request_schema: dict[str, Any] | None = None
    responses: dict[int, dict[str, Any] | None] = field(default_factory=dict)  # status -> JSON schema
    params: tuple[Param, ...] = ()
    content_type: str = "application/json"
    in_schema: bool = True
    body_size_max_bytes: int | None = None  # this route's own body limit; None: server.body_size_max_bytes
