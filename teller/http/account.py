"""The signed-in user's account: profile, assets, balances and ledger history."""

from __future__ import annotations

from aiohttp import web

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
        rows.append({
            "asset": asset.symbol, "chain": asset.chain, "decimals": asset.decimals,
            "available": format_amount(available, asset.decimals), "held": format_amount(on_hold, asset.decimals),
        })
    return web.json_response({"balances": rows})


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
