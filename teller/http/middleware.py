"""The request pipeline: errors and metrics outermost, then limits, then authentication.

Which routes need what is decided by path, as docs/API.md states it: every ``/api/v1/*`` route
but ``auth/*``, ``openapi.json`` and ``config`` needs a user JWT; ``/ops/*`` needs the ops token.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import NamedTuple

from aiohttp import web

from teller.errors import (
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    TellerError,
)
from teller.http.auth import Authenticator, bearer_token
from teller.http.errors import error_body, error_response
from teller.http.metrics import HttpMetrics
from teller.http.ratelimit import KeyedRateLimiter
from teller.log import get_logger
from teller.runtime import ActorRuntimeError

__all__ = ["build_middlewares", "USER_ID"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
USER_ID = web.RequestKey("user_id", int)
_PUBLIC_API = ("/api/v1/auth/", "/api/v1/openapi.json", "/api/v1/config")
_LIMITED = ("/api/", "/ops/")
_HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
_log = get_logger(component="http")


class _Gate(NamedTuple):
    """What a path needs before its handler runs, and the route's label in the metrics."""

    label: str          # the route's template, never the raw path (ids would explode the series)
    ip_limited: bool
    needs: str | None   # "user" (a JWT), "ops" (the ops token), "missing" (a 404 under /api/) or None


def _gate_for(path: str, label: str) -> _Gate:
    if not path.startswith(_LIMITED):
        return _Gate(label, False, None)
    if path.startswith("/ops/"):
        return _Gate(label, True, "ops")
    if path.startswith(_PUBLIC_API):
        return _Gate(label, True, None)
    return _Gate(label, True, "user" if path.startswith("/api/v1/") else "missing")


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource  # None when nothing matched (404, 405)
    return resource.canonical if resource is not None else "unmatched"


def _error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """Turn a failure into the error body; a bug is a 500 with nothing about it in the answer."""
    if isinstance(exc, TellerError):
        return error_response(exc)
    if isinstance(exc, ActorRuntimeError):
        # A busy, full or restarting actor: the request may be retried (money commands are idempotent).
        return error_response(ServiceUnavailable("the service is busy or restarting; try again"))
    if isinstance(exc, web.HTTPException):  # only statuses >= 400 get here
        allow = exc.headers.get("Allow")
        return web.json_response(error_body(_HTTP_ERROR_CODES.get(exc.status, "http_error"), exc.reason),
                                 status=exc.status, headers={"Allow": allow} if allow else {})
    _log.exception("http.unhandled", route=_route_name(request), method=request.method)
    return web.json_response(error_body("internal_error", "internal error"), status=500)


def build_middlewares(*, body_size_max_bytes: int, ip_limiter: KeyedRateLimiter, user_limiter: KeyedRateLimiter,
                      auth: Authenticator, metrics: HttpMetrics,
                      body_size_max_bytes_by_route: Mapping[str, int] | None = None) -> list[Middleware]:
    """One middleware and one coroutine frame per request: metrics around errors around limits and
    authentication around the handler. Its parts are given here once, not looked up per request.
    ``body_size_max_bytes_by_route`` maps a route's template to its own limit (the bot's webhook)."""
    route_limits = dict(body_size_max_bytes_by_route or {})
    # A plain route's path is its template, so what it needs is decided once, on its first request
    # (one entry per route). A templated, static or unmatched path is judged from the path each time.
    plain_gates: dict[web.PlainResource, _Gate] = {}

    def gate_of(request: web.Request) -> _Gate:
        resource = request.match_info.route.resource  # None when nothing matched (404, 405)
        if resource is None:
            return _gate_for(request.path, "unmatched")
        gate = plain_gates.get(resource)  # before isinstance: an ABC check costs more than the lookup
        if gate is not None:
            return gate
        if not isinstance(resource, web.PlainResource):
            return _gate_for(request.path, resource.canonical)
        gate = plain_gates[resource] = _gate_for(resource.canonical, resource.canonical)
        return gate

    def admit(request: web.Request, gate: _Gate) -> None:
        """Raise unless the request may reach its handler; a user's id goes into the request."""
        content_length = request.content_length
        limit = route_limits.get(gate.label, body_size_max_bytes)
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"the body must be at most {limit} bytes")
        if not gate.ip_limited:
            return
        wait_s = ip_limiter.take(request.remote or "unknown")
        if wait_s:
            raise RateLimited(retry_after_s=int(wait_s))
        if gate.needs == "user":
            subject = auth.user_id_from_token(bearer_token(request.headers.get("Authorization")))
            if not subject.isascii() or not subject.isdigit():
                raise InvalidToken()
            wait_s = user_limiter.take(subject)
            if wait_s:
                raise RateLimited(retry_after_s=int(wait_s))
            request[USER_ID] = int(subject)
        elif gate.needs == "ops":
            if not auth.is_ops_token(bearer_token(request.headers.get("Authorization"))):
                raise InvalidToken("the ops token is required")
        elif gate.needs == "missing":
            raise NotFound("no such route")

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        started_s = time.perf_counter()
        gate = gate_of(request)
        try:
            admit(request, gate)
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect is an answer, not an error
                raise
            response = _error_answer(request, exc)
        except Exception as exc:
            response = _error_answer(request, exc)
        metrics.observe(request.method, gate.label, response.status, time.perf_counter() - started_s)
        return response

    return [pipeline]
