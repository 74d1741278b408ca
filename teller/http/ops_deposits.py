"""Ops routes of the deposit flow: credited deposits whose transaction left the chain, and their resolution.

- ``GET /ops/deposits/reversals?state=open|resolved|all&limit=&after=``: reversed deposits by id
  (``open``, the default: waiting for an operator, their user's withdrawals of the asset frozen).
- ``POST /ops/deposits/{id}/resolve`` ``{"action": "debit" | "release", "reason": "<1-500 chars>"}``:
  ``debit`` takes the amount back from the user (409 ``insufficient_funds`` if they no longer have it,
  and nothing changes: the operator decides what next), ``release`` keeps the credit (the operator
  judged it real); both lift the freeze and record the reason, in one transaction. 404 for an unknown
  or unreversed deposit, 409 for one already resolved (a replay included).

Both need the ops token (the middleware checks it for every ``/ops/`` path). Every input is checked
before anything is read or written: a bad request is a 4xx and changes nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller.errors import InvalidInput, NotFound
from teller.http.context import flow_service
from teller.http.render import rfc3339
from teller.http.requests import ID_DIGITS_MAX, json_object, only_fields, positive_id, query_int, string_field
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount
from teller.storage.deposits import REVERSAL_STATES, REVERSALS_PAGE_MAX, RESOLUTIONS
from teller.storage.freezes import REASON_LEN_MAX

__all__ = ["routes", "reversal_json", "REVERSALS_PAGE_DEFAULT"]

REVERSALS_PAGE_DEFAULT = 50
STATE_LEN_MAX = 16
ACTION_LEN_MAX = 16
_RESOLVE_KEYS = frozenset({"action", "reason"})


def _service(request: web.Request) -> Any:
    return flow_service(request, "deposits", "deposits")


def reversal_json(row: dict[str, Any], *, decimals: int) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "user_id": str(row["user_id"]), "chain": row["chain"], "asset": row["asset"],
        "amount": format_amount(row["amount_minor"], decimals), "tx_hash": row["tx_hash"],
        "ordinal": int(row["ordinal"]), "block_number": int(row["block_number"]),
        "reappeared_block": None if row["reappeared_block"] is None else int(row["reappeared_block"]),
        "reversed_at": rfc3339(row["reversed_at"]), "resolution": row["resolution"],
        "resolution_reason": row["resolution_reason"], "resolved_at": rfc3339(row["resolved_at"]),
    }


async def list_reversals(request: web.Request) -> web.Response:
    service = _service(request)
    state = request.query.get("state") or "open"
    if len(state) > STATE_LEN_MAX or state not in REVERSAL_STATES:
        raise InvalidInput(f"query parameter 'state' must be one of {', '.join(REVERSAL_STATES)}")
    limit = query_int(request, "limit", default=REVERSALS_PAGE_DEFAULT, low=1, high=REVERSALS_PAGE_MAX)
    after_text = request.query.get("after") or "0"
    after = 0 if after_text == "0" else positive_id(after_text)
    if after is None:
        raise InvalidInput("query parameter 'after' must be a deposit id")
    rows = await service.repo.reversals(state=state, limit=limit, after_id=after)
    return web.json_response({"reversals": [reversal_json(r, decimals=service.decimals(r)) for r in rows]})


async def resolve(request: web.Request) -> web.Response:
    service = _service(request)
    deposit_id = positive_id(request.match_info["id"])
    if deposit_id is None:
        raise NotFound("no reversed deposit with this id")
    body = await json_object(request)
    only_fields(body, _RESOLVE_KEYS)
    action = string_field(body, "action", len_max=ACTION_LEN_MAX)
    if action not in RESOLUTIONS:
        raise InvalidInput(f"'action' must be one of {', '.join(RESOLUTIONS)}")
    reason = string_field(body, "reason", len_max=REASON_LEN_MAX)
    if not reason.strip():
        raise InvalidInput("'reason' must say why")
    row = await service.resolve_reversal(deposit_id, action=action, reason=reason)
    return web.json_response(reversal_json(row, decimals=service.decimals(row)))


def routes() -> list[Route]:
    return [
        Route("GET", "/ops/deposits/reversals", list_reversals,
              "Credited deposits whose transaction left the chain for good, by id", "ops", security="ops",
              responses={200: ref("DepositReversals"), 422: None, 503: None},
              params=(Param("state", "query", {"type": "string", "enum": list(REVERSAL_STATES)}),
                      Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": REVERSALS_PAGE_MAX}),
                      Param("after", "query", {"type": "string", "maxLength": ID_DIGITS_MAX}))),
        Route("POST", "/ops/deposits/{id}/resolve", resolve,
              "Resolve a reversed deposit once: debit it back from the user, or release (keep the credit)", "ops",
              security="ops", request_schema=ref("DepositResolveRequest"),
              responses={200: ref("DepositReversal"), 400: None, 404: None, 409: None, 413: None, 422: None,
                         503: None},
              params=(Param("id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"}, required=True),)),
    ]
