"""Build the aiohttp application from the running Teller's parts and the flows' route tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from teller.http import account, ops, page, signin
from teller.http.context import SERVICES, Services
from teller.http.headers import add_security_headers
from teller.http.middleware import build_middlewares
from teller.http.openapi import build_openapi
from teller.http.ratelimit import KeyedRateLimiter
from teller.http.routing import Route

__all__ = ["build_app", "core_routes"]

API_VERSION = "1.0.0"
_OPENAPI = web.AppKey("openapi", dict)


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[_OPENAPI])


def core_routes() -> list[Route]:
    return [
        *signin.routes(), *account.routes(), *ops.routes(), *page.routes(),
        Route("GET", "/api/v1/openapi.json", openapi_document, "This document", "meta", security=None,
              responses={200: {"type": "object"}}),
    ]


def build_app(services: Services, *, extra_routes: Iterable[Route] = ()) -> web.Application:
    server = services.settings.server
    table = [*core_routes(), *extra_routes]
    app = web.Application(
        client_max_size=server.body_size_max_bytes,  # a route with its own limit reads through request.clone
        middlewares=build_middlewares(
            body_size_max_bytes=server.body_size_max_bytes,
            body_size_max_bytes_by_route={r.path: r.body_size_max_bytes for r in table if r.body_size_max_bytes},
            ip_limiter=KeyedRateLimiter(rate_per_s=server.rate_limit_per_ip_per_s, burst=server.rate_limit_burst * 2),
            user_limiter=KeyedRateLimiter(rate_per_s=server.rate_limit_per_user_per_s, burst=server.rate_limit_burst),
            auth=services.auth, metrics=services.metrics,
        ),
    )
    app.on_response_prepare.append(add_security_headers)
    app[SERVICES] = services
    document: dict[str, Any] = build_openapi(table, version=API_VERSION)
    app[_OPENAPI] = document
    for route in table:
        app.router.add_route(route.method, route.path, route.handler)
    app.router.add_static("/static/", page.STATIC_DIR, append_version=False)
    return app
