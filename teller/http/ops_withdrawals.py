"""Ops routes for what waits for an operator: freezes, and withdrawals in an incident.

- ``GET /ops/freezes``: the active freezes (what stops withdrawals, and why).
- ``POST /ops/freezes/{id}/release`` ``{"reason"}``: lift one, the reason recorded.
- ``POST /ops/withdrawals/{id}/resolve`` ``{"action": "settle" | "refund", "reason"}``: decide a withdrawal
  in an incident (or refund one never signed), through its chain's WithdrawalActor.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller.errors import InvalidInput, NotFound
from teller.flows.base import ask_actor
from teller.http.context import SERVICES, flow_service
from teller.http.render import rfc3339
from teller.http.requests import json_object, only_fields, positive_id, string_field
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.http.withdrawals import withdrawal_json
from teller.storage.freezes import REASON_LEN_MAX, Freezes

__all__ = ["routes", "freeze_json"]

ACTIONS = ("settle", "refund")
_RELEASE_KEYS = frozenset({"reason"})
_RESOLVE_KEYS = frozenset({"action", "reason"})
_ID_PARAM = Param("id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"}, required=True)


def freeze_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "key": row["freeze_key"], "scope": row["scope"], "chain": row["chain"],
        "user_id": None if row["user_id"] is None else str(row["user_id"]), "asset": row["asset"],
        "reason": row["reason"], "created_at": rfc3339(row["created_at"]),
        "resolved_at": rfc3339(row["resolved_at"]) if row["resolved_at"] else None,
        "resolution": row["resolution"], "resolution_reason": row["resolution_reason"],
    }


def _path_id(request: web.Request, what: str) -> int:
    found = positive_id(request.match_info.get("id", ""))
    if found is None:
        raise NotFound(f"no such {what}")
    return found


async def list_freezes(request: web.Request) -> web.Response:
    rows = await Freezes(request.app[SERVICES].store).active()
    return web.json_response({"freezes": [freeze_json(r) for r in rows]})


async def release_freeze(request: web.Request) -> web.Response:
    freeze_id = _path_id(request, "freeze")
    body = await json_object(request)
    only_fields(body, _RELEASE_KEYS)
    reason = string_field(body, "reason", len_max=REASON_LEN_MAX)
    row = await Freezes(request.app[SERVICES].store).release(freeze_id, reason=reason)
    return web.json_response(freeze_json(row))


async def resolve_withdrawal(request: web.Request) -> web.Response:
    withdrawal_id = _path_id(request, "withdrawal")
    body = await json_object(request)
    only_fields(body, _RESOLVE_KEYS)
    action = string_field(body, "action", len_max=16)
    if action not in ACTIONS:
        raise InvalidInput(f"'action' must be one of {', '.join(ACTIONS)}")
    reason = string_field(body, "reason", len_max=REASON_LEN_MAX)
    service = flow_service(request, "withdrawals", "withdrawals")
    row = await service.repo.get(withdrawal_id)
    if row is None:
        raise NotFound("no such withdrawal")
    services = request.app[SERVICES]
    resolved = await ask_actor(
        service.actor(row["chain"]).call("resolve", withdrawal_id, action=action, reason=reason),
        timeout_s=services.settings.server.upstream_timeout_s)
    return web.json_response(withdrawal_json(resolved, services.assets.get(f"{row['chain']}:{row['asset']}")))


def routes() -> list[Route]:
    reason = {"type": "string", "minLength": 1, "maxLength": REASON_LEN_MAX}
    return [
        Route("GET", "/ops/freezes", list_freezes, "Active freezes: what stops withdrawals, and why", "ops",
              security="ops", responses={200: {"type": "object"}}),
        Route("POST", "/ops/freezes/{id}/release", release_freeze, "Lift a freeze, with the operator's reason",
              "ops", security="ops",
              request_schema={"type": "object", "required": ["reason"], "additionalProperties": False,
                              "properties": {"reason": reason}},
              responses={200: {"type": "object"}, 400: None, 404: None, 413: None, 422: None},
              params=(_ID_PARAM,)),
        Route("POST", "/ops/withdrawals/{id}/resolve", resolve_withdrawal,
              "Decide a withdrawal that waits for an operator: settle (paid) or refund (the money did not leave)",
              "ops", security="ops",
              request_schema={"type": "object", "required": ["action", "reason"], "additionalProperties": False,
                              "properties": {"action": {"type": "string", "enum": list(ACTIONS)}, "reason": reason}},
              responses={200: ref("Withdrawal"), 400: None, 404: None, 409: None,
                         413: None, 422: None, 503: None},
              params=(_ID_PARAM,)),
    ]
