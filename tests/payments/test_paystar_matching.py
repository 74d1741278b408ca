"""Paystar info-matching (Shahkar, card and IBAN <-> national code) through the real client, on the sandbox."""

from __future__ import annotations

import pytest

from teller.errors import InvalidCard, InvalidIban, ProviderLimit, ProviderUnavailable
from teller.payments.cards import parse_card
from teller.payments.iban import build_iban
from teller.payments.paystar import PaystarClient
from teller.payments.sandbox import SandboxHandle
from teller.payments.sandbox_people import PEOPLE, make_person, sandbox_card
from teller.payments.sandbox_state import FailureMode, Scope, fake_card_account
from tests.fixtures.payments import CLIENT_RETRIES_MAX

SARA, REZA = PEOPLE[0], PEOPLE[1]


async def test_shahkar_matches_a_persons_own_mobile_only(paystar_client: PaystarClient) -> None:
    assert await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)
    assert not await paystar_client.shahkar(national_code=SARA.national_code, mobile=REZA.mobile)
    assert not await paystar_client.shahkar(national_code="0012345679", mobile=SARA.mobile)


async def test_a_card_matches_its_holders_code_only(paystar_client: PaystarClient) -> None:
    card = parse_card(SARA.cards[0])
    assert await paystar_client.card_matches(card, national_code=SARA.national_code)
    assert not await paystar_client.card_matches(card, national_code=REZA.national_code)
    stranger = parse_card(sandbox_card("603799", 42))  # a real card of nobody in the population
    assert not await paystar_client.card_matches(stranger, national_code=SARA.national_code)
    with pytest.raises(InvalidCard):  # a BIN no bank has: Paystar's status 10
        await paystar_client.card_matches(parse_card("9999990000000009"), national_code=SARA.national_code)


async def test_an_iban_matches_its_holders_code_only(paystar_client: PaystarClient) -> None:
    card_iban = fake_card_account(SARA.cards[0])
    assert card_iban is not None
    for iban in (SARA.ibans[0], card_iban.iban):
        assert await paystar_client.iban_matches(iban, national_code=SARA.national_code)
        assert not await paystar_client.iban_matches(iban, national_code=REZA.national_code)
    with pytest.raises(InvalidIban):
        await paystar_client.iban_matches(build_iban(bank_code="999", account="0" * 19), national_code=SARA.national_code)


async def test_the_card_inquiry_names_the_person(paystar_client: PaystarClient) -> None:
    info = await paystar_client.card_to_iban(SARA.cards[0])
    assert info.owner_name == SARA.name
    assert (await paystar_client.iban_inquiry(info.iban)).owners == (SARA.name,)


async def test_failure_modes(paystar_client: PaystarClient, paystar_sandbox: SandboxHandle) -> None:
    state = paystar_sandbox.state
    state.fail(FailureMode.MISMATCH, scope=Scope.MATCHING)
    assert not await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)
    state.fail(FailureMode.LIMIT, scope=Scope.MATCHING)
    with pytest.raises(ProviderLimit) as limited:
        await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)
    assert limited.value.code == "provider_limit"
    for mode in (FailureMode.ERROR, FailureMode.TIMEOUT, FailureMode.GARBAGE):
        state.fail(mode, count=CLIENT_RETRIES_MAX + 1, scope=Scope.MATCHING)
        with pytest.raises(ProviderUnavailable):
            await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)
        state.clear_failures()  # a garbage answer is not retried: the rest of its plan is left over
    state.fail(FailureMode.MALFORMED, scope=Scope.MATCHING)
    with pytest.raises(ProviderUnavailable):
        await paystar_client.card_matches(parse_card(SARA.cards[0]), national_code=SARA.national_code)
    assert await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)


async def test_a_person_added_by_a_test_is_known(paystar_client: PaystarClient, paystar_sandbox: SandboxHandle) -> None:
    person = make_person(77, "Narges Moradi")
    paystar_sandbox.state.add_person(person)
    assert await paystar_client.shahkar(national_code=person.national_code, mobile=person.mobile)
    assert await paystar_client.card_matches(parse_card(person.cards[0]), national_code=person.national_code)


async def test_the_log_never_carries_codes_mobiles_or_cards(log_stream: object, paystar_client: PaystarClient,
                                                            paystar_sandbox: SandboxHandle) -> None:
    paystar_sandbox.state.fail(FailureMode.ERROR, count=1, scope=Scope.MATCHING)
    await paystar_client.shahkar(national_code=SARA.national_code, mobile=SARA.mobile)
    await paystar_client.card_matches(parse_card(SARA.cards[0]), national_code=SARA.national_code)
    text = log_stream.getvalue()  # type: ignore[attr-defined]
    assert "paystar" in text
    for secret in (SARA.national_code, SARA.mobile, SARA.mobile[1:], SARA.cards[0]):
        assert secret not in text
