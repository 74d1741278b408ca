"""The bot's webhook: ``POST /telegram/webhook/{secret}`` on Teller's aiohttp app, and its registration.

Two secrets, so that a logged URL does not give away the header: the path secret
(``telegram.webhook_path_secret``) makes the route exist (any other path is a 404, as for a
guesser), and the ``X-Telegram-Bot-Api-Secret-Token`` header must carry the header secret
(``telegram.webhook_secret``, Telegram's ``secret_token``). The header is checked here, before
aiogram: it must be printable ASCII and equal as bytes (``hmac.compare_digest``); missing or bad is
a 401. (aiogram's own check compares ``str`` with ``str``, which raises on a non-ASCII value.)

The route takes bodies up to ``WEBHOOK_BODY_BYTES_MAX``, more than the server's global limit (see
the constant); the server's middleware reads a route's own limit from ``Route.body_size_max_bytes``.
``set_webhook`` registers both secrets with Telegram.
"""

from __future__ import annotations

import hmac
import json
import re

from aiogram import Bot, Dispatcher
from aiogram.exceptions import AiogramError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from teller.errors import TelegramUnavailable

__all__ = ["WEBHOOK_PATH", "WEBHOOK_BODY_BYTES_MAX", "SECRET_HEADER", "mount_webhook", "set_webhook"]

WEBHOOK_PATH = "/telegram/webhook/{secret}"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram documents no maximum for an Update, so the bound is an estimate of the largest one we
# accept (allowed_updates: message, callback_query). One message's content: 4096 UTF-16 units of
# text (or a 4096-unit premium caption) at most 6 JSON bytes each (\uXXXX escapes) = 24 KB, its
# entities (100 at ~150 bytes) 15 KB, an inline keyboard (100 buttons at ~300 bytes) 30 KB: ~70 KB.
# An update carries at most three of those (the message, its reply_to_message, which never nests
# further, and a quote or external_reply) ~210 KB, plus the users and chats: 256 KB.
WEBHOOK_BODY_BYTES_MAX = 256 * 1024
_SECRET_LEN_MIN = 16
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,256}")  # Telegram's alphabet for secret_token, 1-256 chars
_PRINTABLE_ASCII_RE = re.compile(r"[\x20-\x7e]+")


def _check_secrets(path_secret: str, header_secret: str) -> None:
    for key, secret in (("telegram.webhook_path_secret", path_secret), ("telegram.webhook_secret", header_secret)):
        if not _SECRET_RE.fullmatch(secret):
            # An empty or short secret would let anyone post fake updates; Telegram allows [A-Za-z0-9_-].
            raise ValueError(f"{key} must be {_SECRET_LEN_MIN} to 256 chars of [A-Za-z0-9_-]")
    if path_secret == header_secret:  # one value would put the header secret in every logged URL
        raise ValueError("telegram.webhook_path_secret must differ from telegram.webhook_secret")


def _header_secret_ok(value: str | None, expected: bytes) -> bool:
    """aiohttp decodes header bytes as UTF-8 with surrogate escapes: anything beyond printable ASCII
    (a \\xff byte, a multibyte character) is refused before any comparison."""
    if value is None or not _PRINTABLE_ASCII_RE.fullmatch(value):
        return False
    return hmac.compare_digest(value.encode("ascii"), expected)


def mount_webhook(app: web.Application, *, bot: Bot, dispatcher: Dispatcher, path_secret: str,
                  header_secret: str) -> str:
    """Add ``POST /telegram/webhook/{secret}`` to ``app`` (before it starts); returns the route path."""
    _check_secrets(path_secret, header_secret)
    path_expected, header_expected = path_secret.encode(), header_secret.encode()
    inner = SimpleRequestHandler(dispatcher=dispatcher, bot=bot)  # the header is checked here, not by aiogram

    async def handle(request: web.Request) -> web.StreamResponse:
        if not hmac.compare_digest(request.match_info["secret"].encode(), path_expected):
            raise web.HTTPNotFound()
        if not _header_secret_ok(request.headers.get(SECRET_HEADER), header_expected):
            raise web.HTTPUnauthorized()
        if request.content_length is not None and request.content_length > WEBHOOK_BODY_BYTES_MAX:
            raise web.HTTPRequestEntityTooLarge(max_size=WEBHOOK_BODY_BYTES_MAX, actual_size=request.content_length)
        # The app's client_max_size is the global limit; this route reads up to its own (a chunked body too).
        request = request.clone(client_max_size=WEBHOOK_BODY_BYTES_MAX)
        body = await request.read()  # cached by aiohttp: aiogram's request.json() reads it again
        # aiogram would answer 500 on a body that is not an Update object; bad input is a 400.
        try:
            update = json.loads(body)
        except ValueError:
            raise web.HTTPBadRequest(text="body is not JSON") from None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise web.HTTPBadRequest(text="body is not a Telegram Update")
        return await inner.handle(request)

    app.router.add_post(WEBHOOK_PATH, handle)
    return WEBHOOK_PATH


async def set_webhook(bot: Bot, *, public_base_url: str, path_secret: str, header_secret: str) -> str:
    """Tell Telegram where to post updates (the path secret in the URL, the header secret as
    ``secret_token``); returns the URL."""
    _check_secrets(path_secret, header_secret)
    url = f"{public_base_url.rstrip('/')}{WEBHOOK_PATH.format(secret=path_secret)}"
    try:
        await bot.set_webhook(url=url, secret_token=header_secret, allowed_updates=["message", "callback_query"])
    except AiogramError as exc:
        raise TelegramUnavailable("cannot register the webhook", error=type(exc).__name__) from exc
    return url
