"""The one place that maps Teller's error tree to HTTP statuses and the error body.

Body: ``{"error": {"code": "<snake_case>", "message": "<human text>"}}``. A bug (anything that is not
a TellerError) is a 500 with no details; its traceback goes to the log, never to the client.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller import errors as e

__all__ = ["status_for", "error_response", "error_body"]

# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[e.TellerError], int], ...] = (
    (e.MalformedRequest, 400),
    (e.InvalidInput, 422),
    (e.NotAuthenticated, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.RateLimited, 429),
    (e.LimitExceeded, 403),
    (e.PayloadTooLarge, 413),
    (e.ServiceUnavailable, 503),
    (e.UpstreamUnavailable, 502),
)


def status_for(error: e.TellerError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 400


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(error: e.TellerError) -> web.Response:
    headers = {}
    if isinstance(error, e.RateLimited):
        headers["Retry-After"] = str(max(1, int(error.retry_after_s)))
    if isinstance(error, e.NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="teller"'
    return web.json_response(error_body(error.code, error.message), status=status_for(error), headers=headers)
