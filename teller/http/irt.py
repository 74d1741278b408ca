"""The user's IRT routes: cards and IBANs bound to their verified identity, where to send rials, deposits.

A card or IBAN is added only for a verified identity (403 ``identity_required``) and only when the
provider says its owner holds the user's national code; the same user adding it again gets it back
(200), anyone else a 409 with no hint of whose it is, until its owner removes it (DELETE, recorded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from teller.assets import IRT_DECIMALS
from teller.errors import NotFound
from teller.flows.base import ask_actor
from teller.http.context import SERVICES, flow_service
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339
from teller.http.requests import json_object, only_fields, positive_id, query_int
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount
from teller.storage.owners import CARD, IBAN

__all__ = ["routes", "irt_service", "card_json", "iban_json", "DEPOSITS_PAGE_MAX"]

DEPOSITS_PAGE_MAX = 100
DEPOSITS_PAGE_DEFAULT = 50
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def irt_service(request: web.Request) -> Any:
    return flow_service(request, "irt", "IRT payments")


def card_json(card: Any) -> dict[str, Any]:
    return {
        "id": str(card.id), "card_masked": card.card_masked, "iban": card.iban, "owner_name": card.owner_name,
        "bank": card.bank, "status": card.status, "created_at": rfc3339(card.created_at),
    }


def iban_json(row: Any) -> dict[str, Any]:
    return {"id": str(row.id), "iban": row.iban, "owner_name": row.owner_name, "bank": row.bank,
            "status": row.status, "created_at": rfc3339(row.created_at)}


def _adder(field: str, add: str, render: Callable[[Any], dict[str, Any]]) -> Handler:
    """POST a card or an IBAN: validated and owner-checked in the registry (one place, one error code)."""
    keys = frozenset({field})

    async def handle(request: web.Request) -> web.Response:
        registry = irt_service(request).registry
        body = await json_object(request)
        only_fields(body, keys)
        row, created = await ask_actor(getattr(registry, add)(request[USER_ID], body.get(field)),
                                       timeout_s=request.app[SERVICES].settings.server.upstream_timeout_s)
        return web.json_response(render(row), status=201 if created else 200)

    return handle


def _remover(kind: str) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        registry = irt_service(request).registry
        item_id = positive_id(request.match_info["id"])
        if item_id is None:
            raise NotFound(f"no such {kind}")
        await registry.remove(kind=kind, user_id=request[USER_ID], item_id=item_id)
        return web.Response(status=204)

    return handle


async def list_cards(request: web.Request) -> web.Response:
    cards = await irt_service(request).registry.owners.cards_of(request[USER_ID])
    return web.json_response({"cards": [card_json(c) for c in cards]})


async def list_ibans(request: web.Request) -> web.Response:
    rows = await irt_service(request).registry.owners.ibans_of(request[USER_ID])
    return web.json_response({"ibans": [iban_json(r) for r in rows]})


async def deposit_info(request: web.Request) -> web.Response:
    irt = irt_service(request).irt
    return web.json_response({"iban": irt.company_iban, "account_owner": irt.account_owner, "bank": irt.bank})


async def deposits(request: web.Request) -> web.Response:
    service = irt_service(request)
    limit = query_int(request, "limit", default=DEPOSITS_PAGE_DEFAULT, low=1, high=DEPOSITS_PAGE_MAX)
    lines = await service.repo.deposits_of(request[USER_ID], limit=limit)
    return web.json_response({"deposits": [
        {
            "id": str(line.id), "amount": format_amount(line.amount_minor, IRT_DECIMALS),
            "source_iban": line.source_iban, "source_card_masked": line.source_card_masked,
            "bank_reference": line.bank_reference, "status": "credited", "created_at": rfc3339(line.created_at),
        }
        for line in lines
    ]})


def routes() -> list[Route]:
    unavailable = {429: None, 502: None, 503: None}
    id_param = (Param("id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"}, required=True),)
    return [
        Route("POST", "/api/v1/cards", _adder("card_number", "add_card", card_json),
              "Add a bank card whose owner is the user's verified identity", "irt", request_schema=ref("CardRequest"),
              responses={200: ref("Card"), 201: ref("Card"), 400: None, 403: None, 409: None, 413: None, 422: None,
                         **unavailable}),
        Route("GET", "/api/v1/cards", list_cards, "The user's cards (verified, or pending from before issue 15)",
              "irt", responses={200: ref("Cards"), 503: None}),
        Route("DELETE", "/api/v1/cards/{id}", _remover(CARD), "Remove one of the user's cards (recorded)", "irt",
              responses={204: None, 404: None, 503: None}, params=id_param),
        Route("POST", "/api/v1/ibans", _adder("iban", "add_iban", iban_json),
              "Add an IBAN whose owner is the user's verified identity", "irt", request_schema=ref("IbanRequest"),
              responses={200: ref("Iban"), 201: ref("Iban"), 400: None, 403: None, 409: None, 413: None, 422: None,
                         **unavailable}),
        Route("GET", "/api/v1/ibans", list_ibans, "The user's IBANs", "irt", responses={200: ref("Ibans"), 503: None}),
        Route("DELETE", "/api/v1/ibans/{id}", _remover(IBAN), "Remove one of the user's IBANs (recorded)", "irt",
              responses={204: None, 404: None, 503: None}, params=id_param),
        Route("GET", "/api/v1/irt/deposit-info", deposit_info, "Where to send rials from a verified card", "irt",
              responses={200: ref("IrtDepositInfo"), 503: None}),
        Route("GET", "/api/v1/irt/deposits", deposits, "The user's credited IRT deposits, newest first", "irt",
              responses={200: ref("IrtDeposits"), 422: None, 503: None},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": DEPOSITS_PAGE_MAX}),)),
    ]
