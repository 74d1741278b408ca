"""Hostile bytes in any header Teller reads are a 4xx with the JSON error body, never a 500 or a traceback.

The requests are written byte for byte on a raw socket: aiohttp's client refuses to send most of them.
aiohttp's own parser answers some values (control characters, a header over 8190 bytes) with its plain-text
400 before Teller sees them, which must not log a traceback quoting the line; every other value reaches
Teller's checks and must be answered there.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from teller.assets import AssetRegistry
from teller.config import Settings
from teller.http import Services, build_app
from teller.http.auth import Authenticator
from teller.http.metrics import HttpMetrics
from teller.http.withdrawals import routes as withdrawal_routes
from tests.fixtures.common import raw_exchange
from tests.fixtures.http import OPS_TOKEN, settings_for_tests

GATEWAY_SECRET = "gateway-secret-for-tests"
# Latin-1 bytes that are not UTF-8 (aiohttp hands them over as surrogates), valid UTF-8 that is not ASCII,
# a long digit run (int() refuses more than 4300 digits) and a long printable value.
HOSTILE = [b"\xff", b"\x80", b"abc\xe9def", b"\xc3\xa9", b"\xf0\x9f\x92\xb0", b"\xed\xa0\x80", b"1" * 5000,
           b"x" * 8000, b"a\xff" * 1000]


@pytest.fixture
def http_settings() -> Settings:
    return settings_for_tests(auth={"gateway_secret": GATEWAY_SECRET})


@pytest.fixture
async def port(store: Any, http_settings: Settings) -> AsyncIterator[int]:
    services = Services(
        settings=http_settings, store=store, assets=AssetRegistry.from_settings(http_settings),
        auth=Authenticator(http_settings.auth), metrics=HttpMetrics(),
        flows={"withdrawals": SimpleNamespace(enabled=True)},  # enough to reach the Idempotency-Key check
    )
    server = TestServer(build_app(services, extra_routes=withdrawal_routes()), host="127.0.0.1")
    await server.start_server()
    try:
        yield server.port
    finally:
        await server.close()


async def _raw(port: int, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
    head += b"Content-Length: 0\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    return await raw_exchange("127.0.0.1", port, head)


def _assert_refused(status: int, body: bytes, *, expected: tuple[int, set[str]], log: io.StringIO) -> None:
    assert status == expected[0], (status, body)
    assert json.loads(body)["error"]["code"] in expected[1]
    assert "Traceback" not in log.getvalue()
    assert '"level": "error"' not in log.getvalue()


@pytest.mark.parametrize("value", [b"\x01", b"\x7f", b"tok\x00en", b"x" * 9000])
@pytest.mark.parametrize("name", [b"Authorization", b"X-Gateway-Secret", b"X-Telegram-Id",
                                  b"Idempotency-Key"])
async def test_a_header_aiohttp_cannot_parse_is_its_400_with_no_traceback_and_no_echo_in_the_log(
        port: int, name: bytes, value: bytes, log_stream: io.StringIO) -> None:
    credential = b"Bearer eyJ-a-real-looking-token." + value
    status, _ = await _raw(port, "POST", "/api/v1/withdrawals", [(name, credential)])
    assert status == 400
    log = log_stream.getvalue()
    assert "Traceback" not in log and "eyJ-a-real-looking-token" not in log


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("path", ["/api/v1/me", "/ops/status"])
async def test_a_hostile_bearer_token_is_a_401(port: int, path: str, value: bytes,
                                              log_stream: io.StringIO) -> None:
    status, body = await _raw(port, "GET", path, [(b"Authorization", b"Bearer " + value)])
    _assert_refused(status, body, expected=(401, {"invalid_token"}), log=log_stream)


@pytest.mark.parametrize("value", HOSTILE)
async def test_a_hostile_gateway_secret_is_a_401(port: int, value: bytes, log_stream: io.StringIO) -> None:
    status, body = await _raw(port, "POST", "/api/v1/auth/telegram",
                              [(b"X-Telegram-Id", b"42"), (b"X-Gateway-Secret", value)])
    _assert_refused(status, body, expected=(401, {"untrusted_gateway"}), log=log_stream)


@pytest.mark.parametrize("value", [*HOSTILE, b"0" * 20 + b"42", b"9" * 16])
async def test_a_hostile_telegram_id_from_the_trusted_gateway_is_a_401(port: int, value: bytes,
                                                                        log_stream: io.StringIO) -> None:
    status, body = await _raw(port, "POST", "/api/v1/auth/telegram",
                              [(b"X-Telegram-Id", value), (b"X-Gateway-Secret", GATEWAY_SECRET.encode())])
    _assert_refused(status, body, expected=(401, {"invalid_init_data"}), log=log_stream)


@pytest.mark.parametrize("value", HOSTILE)
async def test_a_hostile_idempotency_key_is_a_422(port: int, value: bytes, http_settings: Settings,
                                                   log_stream: io.StringIO) -> None:
    token = Authenticator(http_settings.auth).issue_token("7").encode()
    status, body = await _raw(port, "POST", "/api/v1/withdrawals",
                              [(b"Authorization", b"Bearer " + token), (b"Idempotency-Key", value)])
    _assert_refused(status, body, expected=(422, {"invalid_idempotency_key"}), log=log_stream)


async def test_the_right_credentials_still_pass(port: int) -> None:
    status, body = await _raw(port, "POST", "/api/v1/auth/telegram",
                              [(b"X-Telegram-Id", b"42"), (b"X-Gateway-Secret", GATEWAY_SECRET.encode())])
    assert status == 200, body
    token = json.loads(body)["token"].encode()
    assert (await _raw(port, "GET", "/api/v1/me", [(b"Authorization", b"bearer " + token)]))[0] == 200
    ops = [(b"Authorization", b"Bearer " + OPS_TOKEN.encode())]
    assert (await _raw(port, "GET", "/ops/status", ops))[0] == 200
