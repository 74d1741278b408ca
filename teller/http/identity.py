"""The user's identity routes (issue 15): share the Telegram contact, verify the national code.

Only masked forms leave: ``0912*****67``, ``******4321``. The bot records a contact through the
same registry (``teller.telegram.contact``).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from teller.errors import InvalidToken
from teller.flows.base import ask_actor
from teller.http.contact import parse_signed_contact
from teller.http.context import SERVICES
from teller.http.irt import irt_service
from teller.http.middleware import USER_ID
from teller.http.render import rfc3339
from teller.http.requests import json_object, only_fields
from teller.http.routing import Route
from teller.http.schemas import ref
from teller.payments.national_code import mask_mobile, mask_national_code

__all__ = ["routes", "identity_json"]

_CONTACT_KEYS = frozenset({"contact"})
_CODE_KEYS = frozenset({"national_code"})


def identity_json(identity: Any) -> dict[str, Any]:
    if identity is None:
        return {"status": "none", "mobile_masked": None, "national_code_masked": None, "verified_at": None}
    code = identity.national_code
    return {
        "status": identity.status, "mobile_masked": mask_mobile(identity.mobile),
        "national_code_masked": mask_national_code(code) if code else None,
        "verified_at": rfc3339(identity.verified_at) if identity.verified_at else None,
    }


async def get_identity(request: web.Request) -> web.Response:
    registry = irt_service(request).registry
    return web.json_response(identity_json(await registry.identity(request[USER_ID])))


async def share_contact(request: web.Request) -> web.Response:
    registry = irt_service(request).registry
    body = await json_object(request)
    only_fields(body, _CONTACT_KEYS)
    services = request.app[SERVICES]
    contact = parse_signed_contact(services.settings.auth.bot_token, body.get("contact"), now_s=time.time())
    user = await services.store.users.get(request[USER_ID])
    if user is None:  # a token for a user that is gone
        raise InvalidToken()
    identity = await registry.share_contact(user_id=user.id, telegram_id=user.telegram_id,
                                            contact_user_id=contact.user_id, phone=contact.phone_number)
    return web.json_response(identity_json(identity))


async def verify_national_code(request: web.Request) -> web.Response:
    registry = irt_service(request).registry
    body = await json_object(request)
    only_fields(body, _CODE_KEYS)
    identity = await ask_actor(registry.verify_national_code(user_id=request[USER_ID],
                                                             national_code=body.get("national_code")),
                               timeout_s=request.app[SERVICES].settings.server.upstream_timeout_s)
    return web.json_response(identity_json(identity))


def routes() -> list[Route]:
    return [
        Route("GET", "/api/v1/identity", get_identity, "The user's identity: none, contact_shared or verified",
              "irt", responses={200: ref("Identity"), 503: None}),
        Route("POST", "/api/v1/identity/contact", share_contact,
              "Record the user's own mobile from Telegram's signed requestContact answer", "irt",
              request_schema=ref("ContactRequest"),
              responses={200: ref("Identity"), 400: None, 403: None, 409: None, 413: None, 422: None, 503: None}),
        Route("POST", "/api/v1/identity/national-code", verify_national_code,
              "Verify the national code against the shared mobile (Shahkar)", "irt",
              request_schema=ref("NationalCodeRequest"),
              responses={200: ref("Identity"), 400: None, 409: None, 413: None, 422: None, 429: None, 502: None,
                         503: None}),
    ]
