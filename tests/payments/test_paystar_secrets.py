"""The provider's base URL and the application's credentials never reach an error or a log line.

A local aiohttp server on loopback plays a failing Paystar (and statement source): 429, 500, or the
connection closed mid-request. The base URL carries userinfo and a key in its path, as a proxy URL might.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from teller.config import PaystarSettings
from teller.errors import ProviderUnavailable
from teller.log import get_logger
from teller.payments.paystar import PaystarClient
from teller.payments.statement import HttpStatementSource
from tests.fixtures.failing_server import hang_up, serving

HANG_GUARD_S = 30  # not a timing assertion: only keeps a broken test from hanging the run
KEY_IN_PATH = "SECRETKEY123"
USER_PASSWORD = "SECRET2"
ACCESS_PASSWORD = "SECRET-access-password"
REFRESH_TOKEN = "SECRET-refresh-token"
SECRETS = (KEY_IN_PATH, USER_PASSWORD, ACCESS_PASSWORD, REFRESH_TOKEN)
MELLI_CARD = "6037991234567893"


class Provider:
    """``mode`` says how it fails; ``base_url`` is where it is, with userinfo and a key in the path."""

    def __init__(self) -> None:
        self.mode = "500"
        self.base_url = ""

    async def answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if self.mode == "close":
            return hang_up(request)
        status = int(self.mode)
        return web.Response(status=status, text=f"<html>{status} at {request.url} {request.headers}</html>")


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    provider = Provider()
    async with serving(provider.answer) as port:
        provider.base_url = f"http://teller:{USER_PASSWORD}@127.0.0.1:{port}/{KEY_IN_PATH}/api"
        yield provider


async def _no_sleep(_s: float) -> None:
    return None


@pytest.mark.parametrize("mode", ["429", "500", "close"])
async def test_a_failing_provider_leaks_no_url_nor_credential(
    provider: Provider, log_stream: io.StringIO, mode: str,
) -> None:
    provider.mode = mode
    settings = PaystarSettings(base_url=provider.base_url, application_id="app-1", access_password=ACCESS_PASSWORD,
                               refresh_token=REFRESH_TOKEN, timeout_s=2.0, retries_max=1)
    assert not any(secret in repr(settings) for secret in SECRETS)
    log = get_logger(actor="/teller/payments")
    errors: list[ProviderUnavailable] = []
    async with PaystarClient(settings, sleep=_no_sleep) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await asyncio.wait_for(client.card_to_iban(MELLI_CARD), HANG_GUARD_S)
        errors.append(info.value)
    source = HttpStatementSource(provider.base_url, timeout_s=2.0, retries_max=1, sleep=_no_sleep)
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await asyncio.wait_for(source.fetch(None, 10), HANG_GUARD_S)
        errors.append(info.value)
    finally:
        await source.close()
    for error in errors:
        log.error("actor crashed", error=repr(error), exc_info=error)  # what a crash logs
        for text in (error.message, str(error), repr(error), repr(error.details)):
            assert not any(secret in text for secret in SECRETS), text
    logged = log_stream.getvalue()
    assert "actor crashed" in logged and ("provider.retry" in logged) == (mode != "429")  # 429 is not retried
    assert not any(secret in logged for secret in SECRETS), logged
    assert MELLI_CARD not in logged
