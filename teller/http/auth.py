"""Who is calling: Telegram init data, the trusted-gateway header, user JWTs and the ops token.

Init data is checked with aiogram's validator (HMAC-SHA256 keyed from the bot token, constant-time
compare); aiogram does not check ``auth_date``, so we do. JWT verification pins HS256 and requires
``sub``, ``iat``, ``exp``, ``aud`` and ``iss``: ``alg: none`` or any other algorithm is refused.

Every credential header (the bearer token, the ops token, ``X-Gateway-Secret``, ``X-Telegram-Id``) passes
``_credential_bytes`` before anything compares or decodes it: printable ASCII of a bounded length, compared
as bytes. aiohttp hands a header's non-UTF-8 bytes over as surrogates, which ``str.encode()`` (ours, or
PyJWT's) refuses with a ``UnicodeEncodeError``; such a value is a 401 here, never a 500.
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from aiogram.utils.web_app import safe_parse_webapp_init_data

from teller.config import AuthSettings, is_header_credential
from teller.errors import ExpiredInitData, InvalidInitData, InvalidToken, NotAuthenticated, UntrustedGateway

__all__ = ["TelegramIdentity", "Authenticator", "bearer_token", "JWT_AUDIENCE", "JWT_ISSUER"]

JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "teller-miniapp"
JWT_ISSUER = "teller"
INIT_DATA_LEN_MAX = 4096
# Telegram's clock and ours may disagree a little; init data "from the future" beyond this is forged.
CLOCK_SKEW_S = 60
TELEGRAM_ID_MAX = 2**52
# Checked before int(): int() refuses a run of over 4300 digits, and a long one is slow anyway.
TELEGRAM_ID_DIGITS_MAX = len(str(TELEGRAM_ID_MAX))
# Verified tokens remembered until they expire: a token is immutable and its signature was checked,
# so re-verifying it on every request (~60 us of HMAC and JSON) buys nothing. Bounded, LRU.
VERIFIED_TOKENS_MAX = 50_000


def _credential_bytes(value: str) -> bytes | None:
    """``value`` as bytes when it is 1 to CREDENTIAL_LEN_MAX printable ASCII characters, else None."""
    if not is_header_credential(value):
        return None
    return value.encode("ascii")


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case)."""
    scheme, _, token = (header or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("Authorization: Bearer <token> is required")
    return token


@dataclass(frozen=True, slots=True)
class TelegramIdentity:
    telegram_id: int
    username: str | None
    first_name: str


class Authenticator:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwt_key = settings.jwt_secret.encode()
        self._ops_token = settings.ops_token.encode()
        self._gateway_secret = settings.gateway_secret.encode() if settings.gateway_secret else b""
        self._verified: OrderedDict[str, tuple[str, int]] = OrderedDict()  # token -> (sub, exp)

    # -- Telegram ---------------------------------------------------------------------------
    def identity_from_init_data(self, init_data: object, *, now_s: float | None = None) -> TelegramIdentity:
        if not isinstance(init_data, str) or not init_data or len(init_data) > INIT_DATA_LEN_MAX:
            raise InvalidInitData("init_data must be the Mini App's initData string")
        try:
            parsed = safe_parse_webapp_init_data(self._settings.bot_token, init_data)
        except (ValueError, TypeError) as exc:  # bad signature, bad query string or bad field values
            raise InvalidInitData() from exc
        user = parsed.user
        if user is None or not 0 < user.id < TELEGRAM_ID_MAX:
            raise InvalidInitData("init data carries no user")
        age_s = (time.time() if now_s is None else now_s) - parsed.auth_date.timestamp()
        if age_s > self._settings.init_data_max_age_s:
            raise ExpiredInitData()
        if age_s < -CLOCK_SKEW_S:
            raise InvalidInitData("auth_date is in the future")
        return TelegramIdentity(telegram_id=user.id, username=user.username, first_name=user.first_name or "")

    def identity_from_gateway(self, *, telegram_id_header: str, gateway_secret_header: str | None) -> TelegramIdentity:
        offered = _credential_bytes(gateway_secret_header) if gateway_secret_header is not None else None
        trusted = self._settings.dev or (
            bool(self._gateway_secret) and offered is not None
            and hmac.compare_digest(self._gateway_secret, offered)
        )
        if not trusted:
            raise UntrustedGateway()
        text = telegram_id_header.strip()
        if (_credential_bytes(text) is None or not text.isdigit() or len(text) > TELEGRAM_ID_DIGITS_MAX
                or not 0 < int(text) < TELEGRAM_ID_MAX):
            raise InvalidInitData("X-Telegram-Id must be a positive Telegram user id")
        return TelegramIdentity(telegram_id=int(text), username=None, first_name="")

    # -- user tokens ------------------------------------------------------------------------
    def issue_token(self, user_id: str, *, now_s: float | None = None) -> str:
        now = int(time.time() if now_s is None else now_s)
        claims = {
            "sub": user_id, "iat": now, "exp": now + self._settings.jwt_ttl_s,
            "aud": JWT_AUDIENCE, "iss": JWT_ISSUER,
        }
        return jwt.encode(claims, self._jwt_key, algorithm=JWT_ALGORITHM)

    @property
    def token_ttl_s(self) -> int:
        return self._settings.jwt_ttl_s

    def user_id_from_token(self, token: str, *, now_s: float | None = None) -> str:
        token_bytes = _credential_bytes(token)
        if token_bytes is None:
            raise InvalidToken()
        now = time.time() if now_s is None else now_s
        cached = self._verified.get(token)
        if cached is not None:
            sub, exp = cached
            if now < exp:
                self._verified.move_to_end(token)
                return sub
            del self._verified[token]
        try:
            claims: dict[str, Any] = jwt.decode(
                token_bytes, self._jwt_key, algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE,
                issuer=JWT_ISSUER,
                options={"require": ["sub", "iat", "exp", "aud", "iss"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken() from exc
        sub, exp = claims["sub"], claims["exp"]
        if not isinstance(sub, str) or not sub or not isinstance(exp, int) or exp <= now:
            raise InvalidToken()
        self._verified[token] = (sub, exp)
        if len(self._verified) > VERIFIED_TOKENS_MAX:
            self._verified.popitem(last=False)
        return sub

    # -- ops --------------------------------------------------------------------------------
    def is_ops_token(self, token: str) -> bool:
        offered = _credential_bytes(token)
        return offered is not None and hmac.compare_digest(self._ops_token, offered)
