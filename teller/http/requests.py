"""Reading request input: a bounded JSON object body, and typed fields with clear errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from teller.errors import InvalidInput, MalformedRequest, PayloadTooLarge

__all__ = ["json_object", "string_field", "query_int"]


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
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(f"query parameter {name!r} must be an integer from {low} to {high}")
    return int(text)
