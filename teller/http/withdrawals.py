"""Crypto withdrawals over HTTP: request one (with an Idempotency-Key), list them, read one.

Every input is checked here before anything is written: a bad request is a 4xx and changes nothing.
Another user's withdrawal id is a 404, as is an unknown one.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from teller.actors.withdrawal_steps import WithdrawalRequest
from teller.assets import Asset
from teller.chain.address import parse_address
from teller.errors import (
    FeatureDisabled,
    InvalidAmount,
    InvalidIdempotencyKey,
    MalformedRequest,
    NotFound,
    UnknownAsset,
)
from teller.http.context import SERVICES, flow_service
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339
from teller.http.requests import json_object, only_fields, query_cursor, query_int, string_field
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount, parse_amount

__all__ = ["routes", "withdrawal_json", "IDEMPOTENCY_KEY_LEN_MAX"]

IDEMPOTENCY_KEY_LEN_MAX = 64
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[!-~]{1,%d}" % IDEMPOTENCY_KEY_LEN_MAX)
PAGE_DEFAULT = 20
PAGE_MAX = 100
ID_DIGITS_MAX = 18
NAME_LEN_MAX = 32
ADDRESS_LEN_MAX = 64
AMOUNT_LEN_MAX = 96
_BODY_KEYS = frozenset({"chain", "asset", "to", "amount"})


def _service(request: web.Request) -> Any:
    return flow_service(request, "withdrawals", "withdrawals")


def _idempotency_key(request: web.Request) -> str:
    """The client's key: 1 to 64 visible ASCII characters (``!`` to ``~``, no space). Any other value is
    a 422; the key only ever reaches the ledger hashed, in its own family (``ledger_keys``)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise MalformedRequest("the Idempotency-Key header is required")
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_LEN_MAX} visible ASCII characters (! to ~, no spaces)")
    return key


def _asset(request: web.Request, body: dict[str, Any]) -> Asset:
    chain = string_field(body, "chain", len_max=NAME_LEN_MAX)
    symbol = string_field(body, "asset", len_max=NAME_LEN_MAX)
    asset = request.app[SERVICES].assets.get(f"{chain}:{symbol}")
    if asset is None or asset.chain is None:
        raise UnknownAsset(f"no asset {symbol!r} on chain {chain!r}")
    return asset


def parse_request(request: web.Request, body: dict[str, Any], *, user_id: int) -> WithdrawalRequest:
    only_fields(body, _BODY_KEYS)
    asset = _asset(request, body)
    to_address = parse_address(string_field(body, "to", len_max=ADDRESS_LEN_MAX))
    amount_minor = parse_amount(string_field(body, "amount", len_max=AMOUNT_LEN_MAX), asset.decimals)
    if amount_minor < asset.min_withdrawal_minor:
        raise InvalidAmount(f"the minimum withdrawal is {format_amount(asset.min_withdrawal_minor, asset.decimals)}"
                            f" {asset.symbol}")
    limit = request.app[SERVICES].settings.withdrawal_daily_limits_minor.get(asset.code)
    return WithdrawalRequest(user_id=user_id, idempotency_key=_idempotency_key(request), asset=asset,
                             to_address=to_address, amount_minor=amount_minor, daily_limit_minor=limit)


def withdrawal_json(row: dict[str, Any], asset: Asset | None) -> dict[str, Any]:
    decimals = asset.decimals if asset is not None else 0
    return {
        "id": str(row["id"]), "chain": row["chain"], "asset": row["asset"], "to": row["to_address"],
        "amount": format_amount(row["amount_minor"], decimals), "fee": format_amount(row["fee_minor"], decimals),
        "status": row["status"], "tx_hash": row["tx_hash"] if row["status"] != "pending" else None,
        "created_at": rfc3339(row["created_at"]), "updated_at": rfc3339(row["updated_at"]),
        "failure_reason": row["failure_reason"],
    }


def _json(request: web.Request, row: dict[str, Any]) -> dict[str, Any]:
    return withdrawal_json(row, request.app[SERVICES].assets.get(f"{row['chain']}:{row['asset']}"))


async def create(request: web.Request) -> web.Response:
    service = _service(request)
    if not service.enabled:
        raise FeatureDisabled("withdrawals are not configured on this server")
    _idempotency_key(request)  # a missing key is refused before the body is even read
    body = await json_object(request)
    parsed = parse_request(request, body, user_id=request[USER_ID])
    row, created = await service.request(parsed)
    return web.json_response(_json(request, row), status=202 if created else 200)


async def list_withdrawals(request: web.Request) -> web.Response:
    service = _service(request)
    limit = query_int(request, "limit", default=PAGE_DEFAULT, low=1, high=PAGE_MAX)
    before_id = query_cursor(request)
    rows = await service.repo.page(request[USER_ID], limit=limit + 1, before_id=before_id)
    items = [_json(request, r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
    return web.json_response({"withdrawals": items, "next_cursor": next_cursor})


async def get_one(request: web.Request) -> web.Response:
    service = _service(request)
    text = request.match_info.get("id", "")
    if not text.isascii() or not text.isdigit() or len(text) > ID_DIGITS_MAX:
        raise NotFound("no such withdrawal")
    row = await service.repo.get_for_user(request[USER_ID], int(text))
    if row is None:
        raise NotFound("no such withdrawal")
    return web.json_response(_json(request, row))


def routes() -> list[Route]:
    key_param = Param("Idempotency-Key", "header",
                      {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LEN_MAX,
                       "pattern": f"^[!-~]{{1,{IDEMPOTENCY_KEY_LEN_MAX}}}$"}, required=True,
                      description="client-chosen; the same key and body again answer the same withdrawal")
    return [
        Route("POST", "/api/v1/withdrawals", create, "Withdraw crypto to an address", "withdrawals",
              request_schema=ref("WithdrawalRequest"),
              responses={200: ref("Withdrawal"), 202: ref("Withdrawal"), 400: None, 403: None, 409: None, 422: None,
                         503: None},
              params=(key_param,)),
        Route("GET", "/api/v1/withdrawals", list_withdrawals, "The user's withdrawals, newest first", "withdrawals",
              responses={200: ref("Withdrawals"), 422: None, 503: None},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}),
                      Param("cursor", "query", {"type": "string", "maxLength": ID_DIGITS_MAX}))),
        Route("GET", "/api/v1/withdrawals/{id}", get_one, "One of the user's withdrawals", "withdrawals",
              responses={200: ref("Withdrawal"), 404: None, 503: None},
              params=(Param("id", "path", {"type": "string", "maxLength": 64}, required=True),)),
    ]
