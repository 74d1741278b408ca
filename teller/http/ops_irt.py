"""Ops routes of the IRT flow: the statement lines parked in suspense (with why), and assigning one to a user.

An assignment names its operator (``operator``, stored on the line and logged); it is refused when
the user has no verified identity (403 ``identity_required``) or when the line's card or IBAN
belongs to other verified users (409 ``assignment_contradicts_line``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller.assets import IRT_DECIMALS
from teller.errors import InvalidInput, NotFound
from teller.flows.base import ask_actor
from teller.http.context import SERVICES
from teller.http.irt import irt_service
from teller.http.render import rfc3339
from teller.http.requests import json_object, only_fields, query_int, string_field
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount

__all__ = ["routes", "UNMATCHED_PAGE_MAX"]

UNMATCHED_PAGE_MAX = 200
UNMATCHED_PAGE_DEFAULT = 50
ID_DIGITS_MAX = 18  # fits a BIGINT
ID_MAX = 2**63 - 1
OPERATOR_LEN_MAX = 64
_ASSIGN_KEYS = frozenset({"user_id", "operator"})


def line_json(line: Any) -> dict[str, Any]:
    return {
        "id": str(line.id), "bank_reference": line.bank_reference,
        "amount": format_amount(line.amount_minor, IRT_DECIMALS),
        "source_iban": line.source_iban, "source_card_masked": line.source_card_masked,
        "occurred_at": rfc3339(line.occurred_at), "status": line.status,
        "user_id": None if line.user_id is None else str(line.user_id), "reason": line.reason,
        "assigned_by": line.assigned_by, "created_at": rfc3339(line.created_at),
    }


def _id(value: Any) -> int | None:
    """A positive id given as an int or a decimal string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= ID_MAX else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= ID_DIGITS_MAX:
        return int(value) if int(value) > 0 else None
    return None


async def list_unmatched(request: web.Request) -> web.Response:
    service = irt_service(request)
    limit = query_int(request, "limit", default=UNMATCHED_PAGE_DEFAULT, low=1, high=UNMATCHED_PAGE_MAX)
    after_text = request.query.get("after") or "0"
    after = 0 if after_text == "0" else _id(after_text)
    if after is None:
        raise InvalidInput("query parameter 'after' must be a line id")
    lines = await service.repo.unmatched(limit=limit, after_id=after)
    return web.json_response({"lines": [line_json(line) for line in lines]})


async def assign(request: web.Request) -> web.Response:
    service = irt_service(request)
    line_id = _id(request.match_info["id"])
    if line_id is None:
        raise NotFound("no such statement line")
    body = await json_object(request)
    only_fields(body, _ASSIGN_KEYS)
    user_id = _id(body.get("user_id"))
    if user_id is None:
        raise InvalidInput("'user_id' must be a user id (a positive integer or its decimal string)")
    operator = string_field(body, "operator", len_max=OPERATOR_LEN_MAX)
    if not operator.isprintable() or not operator.strip():
        raise InvalidInput("'operator' names who assigns the line: printable text")
    line = await ask_actor(service.matcher().call("assign", line_id, user_id, operator.strip()),
                           timeout_s=request.app[SERVICES].settings.server.upstream_timeout_s)
    return web.json_response(line_json(line))


def routes() -> list[Route]:
    return [
        Route("GET", "/ops/irt/unmatched", list_unmatched, "Statement lines credited to suspense, oldest first",
              "ops", security="ops", responses={200: ref("IrtLines"), 422: None, 503: None},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": UNMATCHED_PAGE_MAX}),
                      Param("after", "query", {"type": "string", "maxLength": ID_DIGITS_MAX}))),
        Route("POST", "/ops/irt/unmatched/{id}/assign", assign, "Credit a suspense line to a user, once", "ops",
              security="ops", request_schema=ref("IrtAssignRequest"),
              responses={200: ref("IrtLine"), 400: None, 403: None, 404: None, 409: None, 413: None, 422: None,
                         503: None},
              params=(Param("id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"}, required=True),)),
    ]
