"""The real Paystar client against the sandbox over loopback."""

from __future__ import annotations

import asyncio
import io

import pytest

from teller.config import PaystarSettings
from teller.errors import InvalidCard, InvalidIban, ProviderUnavailable
from teller.payments.iban import iban_bank_code, iban_check_valid
from teller.payments.paystar import PaystarClient
from teller.payments.sandbox import SandboxHandle
from teller.payments.sandbox_state import FailureMode, Scope, fake_card_account
from tests.fixtures.common import free_port
from tests.fixtures.payments import CLIENT_RETRIES_MAX, FakeClock

MELLI_CARD = "6037991234567893"
MELLAT_CARD = "6104337650001231"
ATTEMPTS = CLIENT_RETRIES_MAX + 1


async def test_card_to_iban_round_trip(paystar_client: PaystarClient) -> None:
    info = await paystar_client.card_to_iban("۶۰۳۷-۹۹۱۲-۳۴۵۶-۷۸۹۳")
    assert info == fake_card_account(MELLI_CARD)
    assert iban_check_valid(info.iban) and iban_bank_code(info.iban) == "017"
    assert info.bank == "Melli" and info.owner_name

    again = await paystar_client.iban_inquiry(info.iban.lower())
    assert again.iban == info.iban and again.owners == (info.owner_name,) and again.bank == "Melli"


async def test_mellat_card_gets_a_mellat_iban(paystar_client: PaystarClient) -> None:
    info = await paystar_client.card_to_iban(MELLAT_CARD)
    assert iban_bank_code(info.iban) == "012" and info.bank == "Mellat"


async def test_unknown_card_is_invalid_card(paystar_client: PaystarClient, paystar_sandbox: SandboxHandle) -> None:
    paystar_sandbox.state.forget_card(MELLI_CARD)
    with pytest.raises(InvalidCard):
        await paystar_client.card_to_iban(MELLI_CARD)
    paystar_sandbox.state.fail(FailureMode.UNKNOWN_CARD)
    with pytest.raises(InvalidCard):
        await paystar_client.card_to_iban(MELLAT_CARD)


async def test_locally_invalid_input_never_reaches_the_provider(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle
) -> None:
    with pytest.raises(InvalidCard):
        await paystar_client.card_to_iban("6037991234567890")  # Luhn fails
    with pytest.raises(InvalidIban):
        await paystar_client.iban_inquiry("IR000170000000000000000001")
    assert paystar_sandbox.state.requests[Scope.INQUIRY] == 0


async def test_unknown_iban_is_invalid_iban(paystar_client: PaystarClient) -> None:
    from teller.payments.iban import build_iban

    with pytest.raises(InvalidIban):
        await paystar_client.iban_inquiry(build_iban(bank_code="999", account="1" * 19))


async def test_expired_key_is_refreshed_before_use(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle, fake_clock: FakeClock
) -> None:
    await paystar_client.card_to_iban(MELLI_CARD)
    assert paystar_sandbox.state.refreshes == 1
    await paystar_client.card_to_iban(MELLI_CARD)
    assert paystar_sandbox.state.refreshes == 1  # the key is reused while valid
    fake_clock.advance(paystar_sandbox.state.api_key_ttl_s)
    await paystar_client.card_to_iban(MELLI_CARD)
    assert paystar_sandbox.state.refreshes == 2


async def test_key_expired_at_the_provider_is_refreshed_transparently_once(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle
) -> None:
    await paystar_client.card_to_iban(MELLI_CARD)
    paystar_sandbox.state.expire_keys()  # the client still believes its key is valid: it gets a 401
    info = await paystar_client.card_to_iban(MELLI_CARD)
    assert info == fake_card_account(MELLI_CARD)
    assert paystar_sandbox.state.refreshes == 2


async def test_concurrent_callers_share_one_refresh(paystar_client: PaystarClient, paystar_sandbox: SandboxHandle) -> None:
    results = await asyncio.gather(*(paystar_client.card_to_iban(MELLI_CARD) for _ in range(8)))
    assert len(set(results)) == 1
    assert paystar_sandbox.state.refreshes == 1


async def test_rejected_credentials_are_provider_unavailable(paystar_settings: PaystarSettings) -> None:
    from dataclasses import replace

    async with PaystarClient(replace(paystar_settings, access_password="wrong")) as client:
        with pytest.raises(ProviderUnavailable):
            await client.card_to_iban(MELLI_CARD)
    async with PaystarClient(replace(paystar_settings, refresh_token="wrong")) as client:
        with pytest.raises(ProviderUnavailable):
            await client.card_to_iban(MELLI_CARD)


@pytest.mark.parametrize("mode", [FailureMode.TIMEOUT, FailureMode.ERROR])
async def test_transient_failures_are_retried_then_succeed(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle, mode: str
) -> None:
    paystar_sandbox.state.fail(mode, count=ATTEMPTS - 1)
    assert await paystar_client.card_to_iban(MELLI_CARD) == fake_card_account(MELLI_CARD)
    assert paystar_sandbox.state.requests[Scope.INQUIRY] == ATTEMPTS


@pytest.mark.parametrize("mode", [FailureMode.TIMEOUT, FailureMode.ERROR])
async def test_persistent_failures_are_provider_unavailable_after_bounded_retries(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle, mode: str
) -> None:
    paystar_sandbox.state.fail(mode, count=ATTEMPTS + 5)
    with pytest.raises(ProviderUnavailable):
        await paystar_client.card_to_iban(MELLI_CARD)
    assert paystar_sandbox.state.requests[Scope.INQUIRY] == ATTEMPTS


@pytest.mark.parametrize("mode", [FailureMode.GARBAGE, FailureMode.MALFORMED])
async def test_garbage_answers_are_provider_unavailable(
    paystar_client: PaystarClient, paystar_sandbox: SandboxHandle, mode: str
) -> None:
    paystar_sandbox.state.fail(mode)
    with pytest.raises(ProviderUnavailable):
        await paystar_client.card_to_iban(MELLI_CARD)
    paystar_sandbox.state.fail(mode, scope=Scope.REFRESH)
    paystar_sandbox.state.expire_keys()
    with pytest.raises(ProviderUnavailable):
        await paystar_client.iban_inquiry("IR820540102680020817909002")


async def test_refused_connection_is_provider_unavailable(paystar_settings: PaystarSettings) -> None:
    from dataclasses import replace

    closed = replace(paystar_settings, base_url=f"http://127.0.0.1:{free_port()}")
    async with PaystarClient(closed, backoff_base_s=0.01) as client:
        with pytest.raises(ProviderUnavailable) as info:
            await client.card_to_iban(MELLI_CARD)
    assert info.value.__cause__ is not None


async def test_no_log_line_holds_a_card_password_or_token(
    log_stream: io.StringIO, paystar_client: PaystarClient, paystar_sandbox: SandboxHandle
) -> None:
    state = paystar_sandbox.state
    await paystar_client.card_to_iban(MELLI_CARD)
    state.expire_keys()
    await paystar_client.card_to_iban(MELLI_CARD)
    state.fail(FailureMode.ERROR, count=1)
    await paystar_client.card_to_iban(MELLI_CARD)
    state.fail(FailureMode.GARBAGE)
    with pytest.raises(ProviderUnavailable):
        await paystar_client.card_to_iban(MELLI_CARD)
    state.forget_card(MELLAT_CARD)
    with pytest.raises(InvalidCard):
        await paystar_client.card_to_iban(MELLAT_CARD)
    logs = log_stream.getvalue()
    assert "paystar.key_refreshed" in logs and "provider.retry" in logs  # the test does see the logs
    for secret in (MELLI_CARD, MELLAT_CARD, state.access_password, state.refresh_token, *state.keys):
        assert secret not in logs
    assert "603799******7893" in logs
