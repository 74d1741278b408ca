"""``POST /api/v1/auth/telegram``: Mini App init data (or a trusted gateway) in, a user JWT out."""

from __future__ import annotations

from aiohttp import web

from teller.http.context import SERVICES
from teller.http.render import field_of, user_json
from teller.http.requests import json_object
from teller.http.routing import Param, Route
from teller.http.schemas import ref

__all__ = ["routes"]


async def sign_in(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    telegram_id_header = request.headers.get("X-Telegram-Id")
    if telegram_id_header is not None:
        identity = services.auth.identity_from_gateway(
            telegram_id_header=telegram_id_header, gateway_secret_header=request.headers.get("X-Gateway-Secret"),
        )
    else:
        body = await json_object(request)
        identity = services.auth.identity_from_init_data(body.get("init_data"))
    user = await services.store.users.get_or_create(
        telegram_id=identity.telegram_id, username=identity.username, first_name=identity.first_name,
    )
    token = services.auth.issue_token(str(field_of(user, "id")))
    return web.json_response({
        "token": token, "token_type": "Bearer", "expires_in": services.auth.token_ttl_s, "user": user_json(user),
    })


def routes() -> list[Route]:
    return [
        Route(
            "POST", "/api/v1/auth/telegram", sign_in, "Sign in with Mini App init data", "auth", security=None,
            request_schema=ref("AuthRequest"), responses={200: ref("AuthResponse")},
            params=(
                Param("X-Telegram-Id", "header", {"type": "string", "pattern": "^[0-9]{1,15}$"},
                      description="trusted gateway only"),
                Param("X-Gateway-Secret", "header", {"type": "string"}),
            ),
        ),
    ]
