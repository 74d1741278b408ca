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


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started_s = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except TellerError as exc:
        response = error_response(exc)
        status = response.status
        return response
    except ActorRuntimeError:
        # A busy, full or restarting actor: the request may be retried (money commands are idempotent).
        response = error_response(ServiceUnavailable("the service is busy or restarting; try again"))
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
        return web.json_response(error_body(code, exc.reason), status=exc.status, headers=_allow_header(exc))
    except Exception:
        _log.exception("http.unhandled", route=_route_name(request), method=request.method)
        return web.json_response(error_body("internal_error", "internal error"), status=500)
    finally:
        metrics = request.app[SERVICES].metrics
        route = _route_name(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started_s)


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
    @web.middleware
    async def limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > body_size_max_bytes:
            raise PayloadTooLarge(f"the body must be at most {body_size_max_bytes} bytes")
        if request.path.startswith(("/api/", "/ops/")):
            wait_s = ip_limiter.take(request.remote or "unknown")
            if wait_s:
                raise RateLimited(retry_after_s=int(wait_s))
        return await handler(request)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        services = request.app[SERVICES]
        if path.startswith("/api/v1/") and not path.startswith(_PUBLIC_API):
            subject = services.auth.user_id_from_token(_bearer(request))
            if not subject.isascii() or not subject.isdigit():
                raise InvalidToken()
            user_id = int(subject)
            wait_s = user_limiter.take(subject)
            if wait_s:
                raise RateLimited(retry_after_s=int(wait_s))
            request[USER_ID] = user_id
        elif path.startswith("/ops/"):
            if not services.auth.is_ops_token(_bearer(request)):
                raise InvalidToken("the ops token is required")
        elif path.startswith("/api/") and not path.startswith(_PUBLIC_API):
            raise NotFound("no such route")
        return await handler(request)

    return [errors_and_metrics, limits, authenticate]
