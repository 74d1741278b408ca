"""The request pipeline: errors and metrics outermost, then limits, then authentication.

Which routes need what is decided by path, as ../shared/API.md states it: every ``/api/v1/*`` route
but ``auth/*``, ``openapi.json`` and ``config`` needs a user JWT; ``/ops/*`` needs the ops token.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from teller.errors import (
    InvalidToken,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    TellerError,
)
from teller.http.context import SERVICES
from teller.http.errors import error_body, error_response
from teller.http.ratelimit import KeyedRateLimiter
from teller.log import get_logger
from teller.runtime import ActorRuntimeError

__all__ = ["build_middlewares", "USER_ID"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER_ID = web.RequestKey("user_id", int)
_PUBLIC_API = ("/api/v1/auth/", "/api/v1/openapi.json", "/api/v1/config")
_log = get_logger(component="http")


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


async def _answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the error body; a bug is a 500 with nothing about it in the answer."""
    try:
        return await handler(request)
    except TellerError as exc:
        return error_response(exc)
    except ActorRuntimeError:
        # A busy, full or restarting actor: the request may be retried (money commands are idempotent).
        return error_response(ServiceUnavailable("the service is busy or restarting; try again"))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
        return web.json_response(error_body(code, exc.reason), status=exc.status, headers=_allow_header(exc))
    except Exception:
        _log.exception("http.unhandled", route=_route_name(request), method=request.method)
        return web.json_response(error_body("internal_error", "internal error"), status=500)


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization: Bearer <token> is required")
    return token.strip()


def build_middlewares(*, body_size_max_bytes: int, ip_limiter: KeyedRateLimiter,
                      user_limiter: KeyedRateLimiter) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    """One middleware (one coroutine frame per request, on the hot path): metrics around errors around
    limits and authentication around the handler."""

    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if request.content_length is not None and request.content_length > body_size_max_bytes:
            raise PayloadTooLarge(f"the body must be at most {body_size_max_bytes} bytes")
        if path.startswith(("/api/", "/ops/")):
            wait_s = ip_limiter.take(request.remote or "unknown")
            if wait_s:
                raise RateLimited(retry_after_s=int(wait_s))
        services = request.app[SERVICES]
        if path.startswith("/api/v1/") and not path.startswith(_PUBLIC_API):
            subject = services.auth.user_id_from_token(_bearer(request))
            if not subject.isascii() or not subject.isdigit():
                raise InvalidToken()
            wait_s = user_limiter.take(subject)
            if wait_s:
                raise RateLimited(retry_after_s=int(wait_s))
            request[USER_ID] = int(subject)
        elif path.startswith("/ops/"):
            if not services.auth.is_ops_token(_bearer(request)):
                raise InvalidToken("the ops token is required")
        elif path.startswith("/api/") and not path.startswith(_PUBLIC_API):
            raise NotFound("no such route")
        return await handler(request)

    @web.middleware
    async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
        started_s = time.perf_counter()
        response = await _answer_errors(request, lambda req: guarded(req, handler))
        request.app[SERVICES].metrics.observe(request.method, _route_name(request), response.status,
                                              time.perf_counter() - started_s)
        return response

    return [pipeline]
