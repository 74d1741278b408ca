"""The user's IRT routes: register and list bank cards, where to send rials, the credited deposits."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from teller.assets import IRT_DECIMALS
from teller.flows.base import ask_actor
from teller.http.context import SERVICES, flow_service
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339
from teller.http.requests import json_object, query_int
from teller.http.routing import Param, Route
from teller.http.schemas import ref
from teller.money import format_amount

__all__ = ["routes", "irt_service", "card_json", "DEPOSITS_PAGE_MAX"]

DEPOSITS_PAGE_MAX = 100
DEPOSITS_PAGE_DEFAULT = 50


def irt_service(request: web.Request) -> Any:
    return flow_service(request, "irt", "IRT payments")


def card_json(card: Any) -> dict[str, Any]:
    return {
        "id": str(card.id), "card_masked": card.card_masked, "iban": card.iban, "owner_name": card.owner_name,
        "bank": card.bank, "status": card.status, "created_at": rfc3339(card.created_at),
    }


async def register_card(request: web.Request) -> web.Response:
    service = irt_service(request)
    body = await json_object(request)
    # The number is validated inside the matcher (parse_card): one place, one error (invalid_card).
    card = await ask_actor(service.matcher().call("register_card", request[USER_ID], body.get("card_number")),
                           timeout_s=request.app[SERVICES].settings.server.upstream_timeout_s)
    return web.json_response(card_json(card), status=201)


async def list_cards(request: web.Request) -> web.Response:
    service = irt_service(request)
    cards = await service.repo.cards_of(request[USER_ID])
    return web.json_response({"cards": [card_json(c) for c in cards]})


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
    unavailable = {502: None, 503: None}
    return [
        Route("POST", "/api/v1/cards", register_card, "Register a bank card, verified through Paystar", "irt",
              request_schema=ref("CardRequest"),
              responses={201: ref("Card"), 400: None, 403: None, 409: None, 413: None, 422: None, **unavailable}),
        Route("GET", "/api/v1/cards", list_cards, "The user's verified cards", "irt",
              responses={200: ref("Cards"), 503: None}),
        Route("GET", "/api/v1/irt/deposit-info", deposit_info, "Where to send rials from a verified card", "irt",
              responses={200: ref("IrtDepositInfo"), 503: None}),
        Route("GET", "/api/v1/irt/deposits", deposits, "The user's credited IRT deposits, newest first", "irt",
              responses={200: ref("IrtDeposits"), 422: None, 503: None},
              params=(Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": DEPOSITS_PAGE_MAX}),)),
    ]
