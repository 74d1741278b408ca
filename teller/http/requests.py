"""Reading request input: a bounded JSON object body, and typed fields with clear errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from teller.errors import InvalidInput, MalformedRequest, PayloadTooLarge

__all__ = ["json_object", "string_field", "query_int", "query_cursor", "only_fields", "positive_id", "CURSOR_DIGITS_MAX",
           "ID_DIGITS_MAX"]

ID_DIGITS_MAX = 18  # fits a BIGINT
CURSOR_DIGITS_MAX = 18  # an id below 2**62


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; 400 for anything else, 413 past the body cap."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge() from exc
    if not raw:
        raise MalformedRequest("a JSON object body is required")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedRequest("the body is not valid UTF-8 JSON") from exc
    if not isinstance(body, dict):
        raise MalformedRequest("the body must be a JSON object")
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def only_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    """Refuse fields the route does not know: a typo must not be silently ignored on a money route."""
    unknown = set(body) - allowed
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))[:200]}")


def string_field(body: dict[str, Any], name: str, *, len_max: int, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{name!r} must be a string")
    if not value or len(value) > len_max:
        raise InvalidInput(f"{name!r} must be 1 to {len_max} characters")
    return value


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    # The length first: int() refuses a run of over 4300 digits (a ValueError, which was a 500).
    if len(text) > len(str(high)) or not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(f"query parameter {name!r} must be an integer from {low} to {high}")
    return int(text)


def positive_id(text: str) -> int | None:
    """A row id given in a path: positive decimal digits that fit a BIGINT, else None (the caller's 404)."""
    if text.isascii() and text.isdigit() and len(text) <= ID_DIGITS_MAX and int(text) > 0:
        return int(text)
    return None


def query_cursor(request: web.Request) -> int | None:
    """The ``cursor`` query parameter of a newest-first page: the id to continue below, or None."""
    cursor = request.query.get("cursor") or None
    if cursor is None:
        return None
    if len(cursor) > CURSOR_DIGITS_MAX or not cursor.isascii() or not cursor.isdigit():
        raise InvalidInput("invalid cursor: pass back the next_cursor of the previous page")
    return int(cursor)
