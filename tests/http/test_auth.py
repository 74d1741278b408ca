"""Sign-in checks that do not need a server: init data, the gateway header, JWTs."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode

import jwt
import pytest
from hypothesis import given, settings, strategies as st

from teller.config import AuthSettings
from teller.errors import ExpiredInitData, InvalidInitData, InvalidToken, UntrustedGateway
from teller.http.auth import JWT_AUDIENCE, JWT_ISSUER, Authenticator
from tests.fixtures.initdata import sign_init_data

BOT_TOKEN = "123456:TEST-bot-token"
SECRET = "s" * 64


def make_auth(**overrides: object) -> Authenticator:
    values = dict(bot_token=BOT_TOKEN, jwt_secret=SECRET, ops_token="ops-token", init_data_max_age_s=3600)
    values.update(overrides)
    return Authenticator(AuthSettings(**values))  # type: ignore[arg-type]


def test_valid_init_data_yields_the_telegram_user() -> None:
    identity = make_auth().identity_from_init_data(sign_init_data(BOT_TOKEN, telegram_id=77, username="bob"))
    assert (identity.telegram_id, identity.username) == (77, "bob")


def test_a_changed_field_is_refused() -> None:
    fields = dict(parse_qsl(sign_init_data(BOT_TOKEN, telegram_id=77)))
    fields["user"] = fields["user"].replace("77", "78")
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(urlencode(fields))


def test_wrong_and_missing_hash_are_refused() -> None:
    fields = dict(parse_qsl(sign_init_data(BOT_TOKEN)))
    fields["hash"] = "0" * 64
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(urlencode(fields))
    del fields["hash"]
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(urlencode(fields))


def test_init_data_signed_with_another_bot_token_is_refused() -> None:
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(sign_init_data("999:other"))


def test_stale_auth_date_is_expired() -> None:
    stale = sign_init_data(BOT_TOKEN, auth_date=int(time.time()) - 7200)
    with pytest.raises(ExpiredInitData):
        make_auth().identity_from_init_data(stale)


def test_auth_date_from_the_future_is_refused() -> None:
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(sign_init_data(BOT_TOKEN, auth_date=int(time.time()) + 3600))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
                 st.integers(), st.none(), st.lists(st.text(max_size=5))))
def test_garbage_init_data_is_invalid_never_a_crash(garbage: object) -> None:
    with pytest.raises(InvalidInitData):
        make_auth().identity_from_init_data(garbage)


def test_gateway_header_needs_the_gateway_secret() -> None:
    auth = make_auth(gateway_secret="gw-secret")
    assert auth.identity_from_gateway(telegram_id_header="5", gateway_secret_header="gw-secret").telegram_id == 5
    with pytest.raises(UntrustedGateway):
        auth.identity_from_gateway(telegram_id_header="5", gateway_secret_header="wrong")
    with pytest.raises(UntrustedGateway):
        make_auth().identity_from_gateway(telegram_id_header="5", gateway_secret_header="")
    assert make_auth(dev=True).identity_from_gateway(telegram_id_header="5", gateway_secret_header=None).telegram_id == 5
    for bad in ("-5", "0", "abc", "٥", "1" * 30):
        with pytest.raises(InvalidInitData):
            make_auth(dev=True).identity_from_gateway(telegram_id_header=bad, gateway_secret_header=None)


def test_issued_token_round_trips() -> None:
    auth = make_auth()
    assert auth.user_id_from_token(auth.issue_token("u-1")) == "u-1"


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"sub": "u-1", "iat": now, "exp": now + 60, "aud": JWT_AUDIENCE, "iss": JWT_ISSUER}
    claims.update(overrides)
    return claims


@pytest.mark.parametrize("token", [
    jwt.encode(_claims(), "another-secret-of-enough-length-000000", algorithm="HS256"),
    jwt.encode(_claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"),
    jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
    jwt.encode(_claims(iss="someone-else"), SECRET, algorithm="HS256"),
    jwt.encode(_claims(), None, algorithm="none"),
    jwt.encode(_claims(), SECRET, algorithm="HS512"),
    jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, SECRET, algorithm="HS256"),
    "not-a-jwt",
    "",
])
def test_forged_expired_or_foreign_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        make_auth().user_id_from_token(token)


def test_a_remembered_token_still_expires() -> None:
    auth = make_auth(jwt_ttl_s=60)
    now = time.time()
    token = auth.issue_token("u-9", now_s=now)
    assert auth.user_id_from_token(token, now_s=now + 1) == "u-9"
    assert auth.user_id_from_token(token, now_s=now + 2) == "u-9"  # from the cache
    with pytest.raises(InvalidToken):
        auth.user_id_from_token(token, now_s=now + 61)


# What aiohttp hands over for a header: any text, its non-UTF-8 bytes as lone surrogates.
header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=64) | st.binary(
    max_size=64).map(lambda raw: raw.decode("utf-8", "surrogateescape"))


@given(value=header_text)
def test_any_credential_header_text_is_refused_with_a_401_error_never_another(value: str) -> None:
    auth = make_auth(gateway_secret="gateway-secret")
    with pytest.raises(InvalidToken):
        auth.user_id_from_token(value)
    assert auth.is_ops_token(value) is False
    with pytest.raises(UntrustedGateway):
        auth.identity_from_gateway(telegram_id_header="42", gateway_secret_header=value)
    try:
        identity = auth.identity_from_gateway(telegram_id_header=value, gateway_secret_header="gateway-secret")
    except InvalidInitData:
        return
    assert str(identity.telegram_id) == value.strip().lstrip("0")
