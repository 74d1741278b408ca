"""The signed-in user's account: profile, assets, balances and ledger history."""

from __future__ import annotations

import functools
import json

from aiohttp import web

from teller.assets import Asset
from teller.errors import NotFound
from teller.http.context import SERVICES
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339, user_json
from teller.http.requests import CURSOR_DIGITS_MAX, query_cursor, query_int
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount

__all__ = ["routes"]

HISTORY_PAGE_MAX = 100
HISTORY_PAGE_DEFAULT = 20
BALANCE_ROW_HEADS_MAX = 256  # distinct assets whose row start is kept (a server has a handful)


async def me(request: web.Request) -> web.Response:
    user = await request.app[SERVICES].store.users.get(request[USER_ID])
    if user is None:  # a valid token for a user that no longer exists
        raise NotFound("no such user")
    return web.json_response(user_json(user))


async def assets(request: web.Request) -> web.Response:
    registry = request.app[SERVICES].assets
    return web.json_response({"assets": [
        {
            "asset": a.symbol, "chain": a.chain, "decimals": a.decimals, "contract": a.contract,
            "min_withdrawal": format_amount(a.min_withdrawal_minor, a.decimals),
            "withdrawal_fee": format_amount(a.withdrawal_fee_minor, a.decimals),
            "confirmations": a.confirmations,
        }
        for a in registry
    ]})


async def balances(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    held = {b.asset: b for b in await services.store.ledger.balances(request[USER_ID])}
    rows = []
    for asset in services.assets:  # every configured asset, zero when never touched
        balance = held.get(asset.code)
        available, on_hold = (balance.available_minor, balance.held_minor) if balance else (0, 0)
        # Amounts are digits, "-" and "." only: nothing in them needs escaping.
        rows.append(f'{_balance_row_head(asset)}{format_amount(available, asset.decimals)}", '
                    f'"held": "{format_amount(on_hold, asset.decimals)}"}}')
    return web.Response(text='{"balances": [' + ", ".join(rows) + "]}", content_type="application/json")


@functools.lru_cache(maxsize=BALANCE_ROW_HEADS_MAX)
def _balance_row_head(asset: Asset) -> str:
    """An asset's balance row up to its amounts, ``{"asset": …, "decimals": …, "available": "``, as
    ``json.dumps`` writes it. The balances answer is the Mini App's most frequent read: encoding what
    never changes once per asset, not per request, halves the handler's own time (json.dumps of the
    whole answer was ~3 us of ~7)."""
    row = json.dumps({"asset": asset.symbol, "chain": asset.chain, "decimals": asset.decimals, "available": ""})
    assert row.endswith('""}')
    return row[:-2]


async def transactions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    limit = query_int(request, "limit", default=HISTORY_PAGE_DEFAULT, low=1, high=HISTORY_PAGE_MAX)
    before_id = query_cursor(request)
    page = await services.store.ledger.history(request[USER_ID], limit=limit,
                                               cursor=None if before_id is None else str(before_id))
    items = []
    for entry in page.entries:
        asset = services.assets.get(entry.asset)
        decimals = asset.decimals if asset else 0
        items.append({
            "id": str(entry.id), "asset": asset.symbol if asset else entry.asset, "chain": asset.chain if asset else None,
            "direction": "credit" if entry.direction == "in" else "debit",
            "amount": format_amount(entry.amount_minor, decimals),
            "kind": _kind(entry.counterparty), "status": entry.status, "created_at": rfc3339(entry.created_at),
        })
    return web.json_response({"transactions": items, "next_cursor": page.next_cursor})


def _kind(counterparty: str) -> str:
    """What a history line is, told by the account on the other side."""
    prefix = counterparty.split(":", 1)[0]
    return {
        "chain": "deposit", "withdrawal-hold": "withdrawal", "hot": "withdrawal", "fees": "fee",
        "bank": "irt_deposit", "suspense": "irt_deposit",
    }.get(prefix, "transfer")


async def client_config(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    return web.json_response({"dev": settings.auth.dev, "bot_username": None})


def routes() -> list[Route]:
    return [
        Route("GET", "/api/v1/config", client_config, "What the Mini App needs to know about this server", "account",
              security=None, responses={200: ref("ClientConfig")}),
        Route("GET", "/api/v1/me", me, "The signed-in user", "account", responses={200: ref("User"), 404: None}),
        Route("GET", "/api/v1/assets", assets, "Assets this server holds", "account", responses={200: ref("Assets")}),
        Route("GET", "/api/v1/balances", balances, "Available and held balance per asset", "account",
              responses={200: ref("Balances")}),
        Route(
            "GET", "/api/v1/transactions", transactions, "Ledger history, newest first", "account",
            responses={200: ref("Transactions"), 422: None},
            params=(
                Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": HISTORY_PAGE_MAX}),
                Param("cursor", "query", {"type": "string", "maxLength": CURSOR_DIGITS_MAX}),
            ),
        ),
    ]
