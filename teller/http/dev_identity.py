"""Dev mode only: ``POST /dev/contact``, a contact string as Telegram's requestContact would give it.

Outside Telegram the Mini App cannot ask for the phone number, so in dev mode it asks here: the
answer is signed with the dev bot token for the caller, carrying the sandbox's dev person's mobile
(``teller.payments.sandbox_people.DEV_PERSON``). The page then posts it to
``/api/v1/identity/contact`` and walks the real path. Imported by the IRT flow only when
``auth.dev`` is on, so no production process has this module (or the sandbox's people) loaded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

from aiohttp import web

from teller.errors import InvalidToken
from teller.http.context import SERVICES, bearer_user_id
from teller.http.routing import Route
from teller.http.schemas import ref
from teller.payments.sandbox_people import DEV_PERSON

__all__ = ["routes", "signed_contact"]


def signed_contact(bot_token: str, *, telegram_id: int, mobile: str, first_name: str, now_s: float) -> str:
    """``contact=...&auth_date=...&hash=...`` signed like Telegram signs WebApp data."""
    contact = {"phone_number": "98" + mobile.removeprefix("0"), "first_name": first_name, "user_id": telegram_id}
    fields = {"contact": json.dumps(contact, separators=(",", ":")), "auth_date": str(int(now_s))}
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


async def dev_contact(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    assert services.settings.auth.dev, "the route exists in dev mode only"
    user = await services.store.users.get(bearer_user_id(request))
    if user is None:
        raise InvalidToken()
    text = signed_contact(services.settings.auth.bot_token, telegram_id=user.telegram_id, mobile=DEV_PERSON.mobile,
                          first_name=DEV_PERSON.name.split()[0], now_s=time.time())
    return web.json_response({"contact": text})


def routes() -> list[Route]:
    return [Route("POST", "/dev/contact", dev_contact, "Dev mode only: a signed contact carrying the dev person's"
                  " mobile, for /api/v1/identity/contact", "dev",
                  responses={200: ref("DevContact"), 401: None, 503: None})]
