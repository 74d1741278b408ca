"""Crypto deposits over HTTP: the user's deposit address per chain, their deposits, the dev faucet.

Every input is checked before anything is written: a bad request is a 4xx and changes nothing.
The faucet exists only when ``auth.dev`` is on (otherwise the route is not registered: 404).

A deposit's ``status`` (see ``teller.storage.deposits``): ``pending`` (seen, waiting for its
confirmations), ``credited``, ``orphaned`` (its block left the chain before it was credited; pending
again if it comes back), ``out_of_chain`` (credited, then its transaction left the chain: it has the
reorg window to come back, still credited meanwhile) and ``reversed_after_credit`` (it did not come
back: withdrawals of that asset wait for support). ``confirmations`` is 0 for the last three.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller.chain.address import parse_address
from teller.errors import InvalidAmount, UnknownAsset
from teller.http.context import SERVICES, bearer_user_id, flow_service
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339
from teller.http.requests import CURSOR_DIGITS_MAX, json_object, only_fields, query_cursor, query_int, string_field
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount, parse_amount

__all__ = ["routes", "deposit_json", "FAUCET_MAX_UNITS"]

PAGE_DEFAULT = 50
PAGE_MAX = 100
NAME_LEN_MAX = 32
ADDRESS_LEN_MAX = 64
AMOUNT_LEN_MAX = 96
FAUCET_MAX_UNITS = 1_000_000   # whole coins/tokens per faucet request
_ADDRESS_KEYS = frozenset({"chain"})
_FAUCET_KEYS = frozenset({"chain", "asset", "amount", "address"})


def _service(request: web.Request) -> Any:
    return flow_service(request, "deposits", "deposits")


def deposit_json(row: dict[str, Any], *, decimals: int, confirmations: int, required: int) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "chain": row["chain"], "asset": row["asset"],
        "amount": format_amount(row["amount_minor"], decimals), "tx_hash": row["tx_hash"],
        "log_index": int(row["log_index"]), "block_number": int(row["block_number"]),
        "confirmations": confirmations, "required_confirmations": required, "status": row["status"],
        "created_at": rfc3339(row["created_at"]), "credited_at": rfc3339(row["credited_at"]),
    }


async def create_address(request: web.Request) -> web.Response:
    service = _service(request)
    body = await json_object(request)
    only_fields(body, _ADDRESS_KEYS)
    chain = service.chain(string_field(body, "chain", len_max=NAME_LEN_MAX))
    address = await service.address(request[USER_ID], chain.name)
    return web.json_response({"chain": chain.name, "address": address})


async def list_deposits(request: web.Request) -> web.Response:
    service = _service(request)
    limit = query_int(request, "limit", default=PAGE_DEFAULT, low=1, high=PAGE_MAX)
    before_id = query_cursor(request)
    rows = await service.repo.page(request[USER_ID], limit=limit + 1, before_id=before_id)
    assets = request.app[SERVICES].assets
    items = []
    for row in rows[:limit]:
        asset = assets.get(f"{row['chain']}:{row['asset']}")
        items.append(deposit_json(row, decimals=asset.decimals if asset else 0,
                                  confirmations=service.confirmations(row),
                                  required=(asset.confirmations or 0) if asset else 0))
    next_cursor = str(rows[limit - 1]["id"]) if len(rows) > limit else None
    return web.json_response({"deposits": items, "next_cursor": next_cursor})


async def faucet(request: web.Request) -> web.Response:
    user_id = bearer_user_id(request)  # /dev/* is outside the /api/v1/ paths the auth middleware guards
    service = _service(request)
    body = await json_object(request)
    only_fields(body, _FAUCET_KEYS)
    chain = service.chain(string_field(body, "chain", len_max=NAME_LEN_MAX))
    symbol = string_field(body, "asset", len_max=NAME_LEN_MAX)
    asset = chain.asset(symbol)
    if asset is None:
        raise UnknownAsset(f"no asset {symbol!r} on chain {chain.name!r}")
    amount_minor = parse_amount(string_field(body, "amount", len_max=AMOUNT_LEN_MAX), asset.decimals)
    if amount_minor <= 0 or amount_minor > FAUCET_MAX_UNITS * 10**asset.decimals:
        raise InvalidAmount(f"the faucet sends more than 0 and at most {FAUCET_MAX_UNITS} {symbol}")
    address = body.get("address")
    to = parse_address(address) if address is not None else None  # not a string: invalid_address
    tx_hash = await service.faucet(user_id, chain_name=chain.name, symbol=symbol,
                                   amount_minor=amount_minor, address=to)
    return web.json_response({"chain": chain.name, "asset": symbol, "amount": format_amount(amount_minor,
                              asset.decimals), "tx_hash": tx_hash}, status=202)


def routes(*, dev: bool = False) -> list[Route]:
    found: list[Route] = [
        Route("POST", "/api/v1/deposit-addresses", create_address, "The user's deposit address on a chain",
              "deposits", request_schema=ref("DepositAddressRequest"),
              responses={200: ref("DepositAddress"), 400: None, 422: None, 503: None}),
        Route("GET", "/api/v1/deposits", list_deposits, "The user's crypto deposits, newest first", "deposits",
              responses={200: ref("Deposits"), 422: None, 503: None},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": PAGE_MAX}),
                      Param("cursor", "query", {"type": "string", "maxLength": CURSOR_DIGITS_MAX}))),
    ]
    if dev:
        found.append(Route("POST", "/dev/faucet", faucet, "Dev mode only: send test funds to a deposit address",
                           "dev", request_schema=ref("FaucetRequest"),
                           responses={202: ref("FaucetResult"), 400: None, 401: None, 422: None, 502: None,
                                      503: None}))
    return found
