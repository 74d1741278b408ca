"""The Paystar open-banking client: API-key refresh, card-to-IBAN and IBAN inquiries, info-matching.

Error contract (``teller.errors``)::

    InvalidCard / InvalidIban ...... the input fails local validation, or Paystar says the card/IBAN
                                     is unknown or invalid (status 10)
    ProviderLimit .................. the inquiry limit is reached (status 9 / HTTP 429): 429, not retried
    ProviderUnavailable ............ everything else: timeouts, refused connections, 5xx after the
                                     bounded retries, garbage or unexpected answers, rejected
                                     application credentials; raised ``from`` the cause when there is one

The API key is fetched on first use and refreshed before it expires (a tenth of its lifetime ahead,
at most ``REFRESH_AHEAD_MAX_S``); a 401 / status 4-5 on an inquiry refreshes it once and retries
once, transparently. Concurrent callers share one refresh. The card number, the password, the
refresh token and the key never reach a log line: logs carry the masked card and the path only.
The info-matching calls (``shahkar``, ``card_matches``, ``iban_matches``) answer True or False; a
national code and a mobile are logged masked, like a card.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from teller.config import PaystarSettings
from teller.errors import InvalidCard, InvalidIban, ProviderLimit, ProviderUnavailable
from teller.log import get_logger
from teller.payments import paystar_wire as wire
from teller.payments.cards import Card, parse_card
from teller.payments.http_retry import Answer, RetryPolicy, exchange
from teller.payments.iban import iban_bank, mask_iban, parse_iban
from teller.payments.national_code import mask_mobile, mask_national_code

__all__ = ["PaystarClient", "REFRESH_AHEAD_MAX_S", "REFRESH_AHEAD_FRACTION"]

REFRESH_AHEAD_MAX_S = 300.0
REFRESH_AHEAD_FRACTION = 0.1
PROVIDER_LIMIT_RETRY_AFTER_S = 600  # the limit is a paid-inquiry budget: a top-up takes a while


def _transient(answer: Answer) -> bool:
    return wire.classify(answer.http_status, answer.body) == wire.Outcome.RETRYABLE


class PaystarClient:
    """One client per process; safe for concurrent use from one event loop."""

    def __init__(
        self,
        settings: PaystarSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        backoff_base_s: float = 0.2,
        backoff_max_s: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._base_url = settings.base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._clock = clock
        self._sleep = sleep
        self._policy = RetryPolicy(
            timeout_s=settings.timeout_s,
            retries_max=max(0, settings.retries_max),
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
        )
        self._key: wire.ApiKey | None = None
        self._key_obtained_at_s = 0.0
        self._refresh_lock = asyncio.Lock()
        self._log = get_logger(actor="payments/paystar")

    async def __aenter__(self) -> PaystarClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- inquiries -------------------------------------------------------------------------

    async def card_to_iban(self, card: Card | str) -> wire.CardIbanInfo:
        """The IBAN, owner and bank behind a card. ``InvalidCard`` when Paystar does not know it."""
        card = card if isinstance(card, Card) else parse_card(card)
        body = wire.card_to_iban_body(
            application_id=self._settings.application_id,
            access_password=self._settings.access_password,
            card=card.number,
        )
        answer = await self._inquire(wire.PATH_CARD_TO_IBAN, body, subject=card.masked)
        if answer is None:
            raise InvalidCard("the bank does not recognise this card number")
        info = self._parse(wire.parse_card_to_iban, answer)
        iban = self._provider_iban(info.iban)
        return replace(info, iban=iban, bank=iban_bank(iban) or info.bank)

    async def iban_inquiry(self, iban: str) -> wire.IbanInfo:
        """The owners, bank and status of an account. ``InvalidIban`` when Paystar does not know it."""
        iban = parse_iban(iban)
        body = wire.iban_inquiry_body(
            application_id=self._settings.application_id,
            access_password=self._settings.access_password,
            iban=iban,
        )
        answer = await self._inquire(wire.PATH_IBAN_INQUIRY, body, subject=mask_iban(iban))
        if answer is None:
            raise InvalidIban("the bank does not recognise this IBAN")
        info = self._parse(wire.parse_iban_inquiry, answer)
        returned = self._provider_iban(info.iban)
        if returned != iban:
            raise ProviderUnavailable("the provider answered about a different IBAN")
        return replace(info, iban=returned, bank=iban_bank(returned) or info.bank)

    # -- info-matching ---------------------------------------------------------------------

    async def shahkar(self, *, national_code: str, mobile: str) -> bool:
        """Does this (validated) national code own this (normalized) mobile? A refusal (status 10) is no."""
        body = wire.shahkar_body(application_id=self._settings.application_id,
                                 access_password=self._settings.access_password,
                                 national_code=national_code, mobile=mobile)
        subject = f"{mask_national_code(national_code)}/{mask_mobile(mobile)}"
        answer = await self._inquire(wire.PATH_SHAHKAR, body, subject=subject)
        return answer is not None and self._parse(wire.parse_match, answer)

    async def card_matches(self, card: Card, *, national_code: str) -> bool:
        """Is this card's holder the owner of this national code? ``InvalidCard`` for an unknown card."""
        body = wire.card_match_body(application_id=self._settings.application_id,
                                    access_password=self._settings.access_password,
                                    national_code=national_code, card=card.number)
        answer = await self._inquire(wire.PATH_CARD_NATIONAL_ID, body, subject=card.masked)
        if answer is None:
            raise InvalidCard("the bank does not recognise this card number")
        return bool(self._parse(wire.parse_match, answer))

    async def iban_matches(self, iban: str, *, national_code: str) -> bool:
        """Is the owner of this national code an owner of this account? ``InvalidIban`` for an unknown IBAN."""
        iban = parse_iban(iban)
        body = wire.iban_match_body(application_id=self._settings.application_id,
                                    access_password=self._settings.access_password,
                                    national_code=national_code, iban=iban)
        answer = await self._inquire(wire.PATH_IBAN_NATIONAL_ID, body, subject=mask_iban(iban))
        if answer is None:
            raise InvalidIban("the bank does not recognise this IBAN")
        return bool(self._parse(wire.parse_match, answer))

    # -- plumbing --------------------------------------------------------------------------

    async def _inquire(self, path: str, body: Mapping[str, Any], *, subject: str) -> Answer | None:
        """POST an inquiry; the OK answer, or None for Paystar's 'invalid input'. Refreshes once on 401."""
        log = self._log.bind(path=path, subject=subject)
        for refreshed in (False, True):
            key = await self._current_key()
            answer = await exchange(
                self._http(),
                "POST",
                self._base_url + path,
                policy=self._policy,
                log=log,
                json_body=body,
                headers={"Authorization": f"Bearer {key.value}", "Accept": "application/json"},
                transient=_transient,
                sleep=self._sleep,
            )
            outcome = wire.classify(answer.http_status, answer.body)
            if outcome == wire.Outcome.AUTH and not refreshed:
                log.info("paystar.key_rejected", http_status=answer.http_status)
                await self._refresh(stale=key)
                continue
            if outcome == wire.Outcome.OK:
                return answer
            if outcome == wire.Outcome.INVALID_INPUT:
                log.info("paystar.not_found")
                return None
            if outcome == wire.Outcome.LIMIT:
                log.warning("paystar.inquiry_limit", http_status=answer.http_status)
                raise ProviderLimit(retry_after_s=PROVIDER_LIMIT_RETRY_AFTER_S)
            log.warning("paystar.unexpected_answer", http_status=answer.http_status, status=wire.answer_status(answer.body))
            raise ProviderUnavailable("the payment provider gave an unexpected answer")
        raise AssertionError("unreachable: the loop returns or raises")

    async def _current_key(self) -> wire.ApiKey:
        key = self._key
        if key is None or self._clock() >= key.expires_at_s - self._refresh_ahead_s(key):
            return await self._refresh(stale=key)
        return key

    def _refresh_ahead_s(self, key: wire.ApiKey) -> float:
        lifetime_s = max(0.0, key.expires_at_s - self._key_obtained_at_s)
        return min(REFRESH_AHEAD_MAX_S, lifetime_s * REFRESH_AHEAD_FRACTION)

    async def _refresh(self, *, stale: wire.ApiKey | None) -> wire.ApiKey:
        async with self._refresh_lock:
            # Another caller may have refreshed while we waited for the lock.
            if self._key is not None and self._key is not stale:
                return self._key
            body = wire.refresh_body(
                application_id=self._settings.application_id,
                access_password=self._settings.access_password,
                refresh_token=self._settings.refresh_token,
            )
            answer = await exchange(
                self._http(),
                "POST",
                self._base_url + wire.PATH_REFRESH,
                policy=self._policy,
                log=self._log.bind(path=wire.PATH_REFRESH),
                json_body=body,
                headers={"Accept": "application/json"},
                transient=_transient,
                sleep=self._sleep,
            )
            if wire.classify(answer.http_status, answer.body) != wire.Outcome.OK:
                self._log.error(
                    "paystar.refresh_rejected", http_status=answer.http_status, status=wire.answer_status(answer.body)
                )
                raise ProviderUnavailable("the payment provider rejected the application's credentials")
            now_s = self._clock()
            key = self._parse(lambda b: wire.parse_api_key(b, now_s=now_s), answer)
            self._key, self._key_obtained_at_s = key, now_s
            self._log.info("paystar.key_refreshed", expires_in_s=round(key.expires_at_s - now_s))
            return key

    def _parse(self, parser: Callable[[Any], Any], answer: Answer) -> Any:
        try:
            return parser(answer.body)
        except wire.MalformedAnswer as exc:
            self._log.warning("paystar.malformed_answer", reason=str(exc))
            raise ProviderUnavailable("the payment provider's answer was malformed") from exc

    def _provider_iban(self, text: str) -> str:
        try:
            return parse_iban(text)
        except InvalidIban as exc:
            raise ProviderUnavailable("the payment provider returned an invalid IBAN") from exc

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
