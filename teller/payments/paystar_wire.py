"""Paystar open-banking wire format: paths, field names, status codes, and the parsers of answers.

Everything the real service could disagree with lives here, so that correcting the client against
production is one small change in this file. What is known, and from where:

- docs.paystar.ir ("open-bankings/info-matching"): the refresh call
  ``POST {base}/open-banking/application/refresh-api-key`` with ``application_id``,
  ``access_password``, ``refresh_token``; success is ``{"status": 1, "data": {"api_key",
  "api_key_expire_date"}, "message"}``; the key lives 24 hours and goes in ``Authorization: Bearer``.
- A public English digest of those docs (2025): the inquiry paths under
  ``open-banking/service/bank-inquiry/`` (``card-to-iban`` with ``card``, ``iban-inquiry`` with
  ``iban``), both also carrying ``application_id`` and ``access_password``, and the shared status
  codes (1 ok, 4 invalid token, 5 expired token, 6 wrong password, 10 invalid input, 11 upstream
  provider error, 13 invalid refresh token).
- Assumed (not public; check against the real service first): the field names inside ``data`` of
  the inquiry answers (below, ``CARD_*`` and ``IBAN_*``), that an unknown card is status 10, that a
  rejected key may come as HTTP 401 as well as status 4/5, and the format of
  ``api_key_expire_date`` (epoch seconds or an ISO date-time; the parser accepts both, and falls back
  to the documented 24 h lifetime). ``status`` is accepted as int or string (clients in the wild
  read it as a string).

Info-matching ("validation and identity", docs.paystar.ir/docs/open-bankings/info-matching), the
identity checks of issue 15:

- docs.paystar.ir: the page exists under that title, authenticates like the inquiries above (API key
  as Bearer, ``application_id`` and ``access_password`` in the body) and lists Shahkar (national code
  <-> mobile) among its services; the stored copy we could read stops before the request fields.
- The public English digest of those docs (July 2025): the paths
  ``open-banking/service/info-matching/mobile-national-id`` (``national_id``, ``mobile_number``),
  ``.../card-national-id`` (``national_id``, ``card_number``, ``birth_date``) and
  ``.../iban-national-id`` (``national_id``, ``iban``, ``birth_date``), and the answer
  ``{"status": 1, "data": {"is_matched": true}, "message"}``; shared status 9 is "insufficient
  banking wallet balance" (inquiries are paid from it).
- Assumed: that ``birth_date`` may be left out (Teller collects no birth date; if production
  requires it, the identity route must gain a ``birth_date`` and these bodies carry it, see
  ``card_match_body``); that ``is_matched`` is a JSON boolean (``"true"``/``1`` are accepted, anything
  else is a malformed answer, never a match); that the inquiry limit shows as status 9 or HTTP 429;
  and that status 10 on a match means the provider refuses the pair (a mismatch to the user).
- Mobile numbers go as ``09xxxxxxxxx`` (the form every Iranian Shahkar service documents).

Production ``base_url`` is ``https://core.paystar.ir/api``; the sandbox serves the same paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "PATH_REFRESH",
    "PATH_CARD_TO_IBAN",
    "PATH_IBAN_INQUIRY",
    "PATH_SHAHKAR",
    "PATH_CARD_NATIONAL_ID",
    "PATH_IBAN_NATIONAL_ID",
    "STATUS_INQUIRY_LIMIT",
    "STATUS_OK",
    "STATUS_TOKEN_INVALID",
    "STATUS_TOKEN_EXPIRED",
    "STATUS_WRONG_PASSWORD",
    "STATUS_INVALID_INPUT",
    "STATUS_UPSTREAM_ERROR",
    "STATUS_REFRESH_TOKEN_INVALID",
    "API_KEY_LIFETIME_DEFAULT_S",
    "ApiKey",
    "CardIbanInfo",
    "IbanInfo",
    "MalformedAnswer",
    "Outcome",
    "answer_status",
    "classify",
    "parse_api_key",
    "parse_card_to_iban",
    "parse_iban_inquiry",
    "parse_match",
    "shahkar_body",
    "card_match_body",
    "iban_match_body",
    "match_answer",
    "refresh_body",
    "card_to_iban_body",
    "iban_inquiry_body",
    "ok_answer",
    "error_answer",
    "TEHRAN",
]

PATH_REFRESH = "/open-banking/application/refresh-api-key"
PATH_CARD_TO_IBAN = "/open-banking/service/bank-inquiry/card-to-iban"
PATH_IBAN_INQUIRY = "/open-banking/service/bank-inquiry/iban-inquiry"
PATH_SHAHKAR = "/open-banking/service/info-matching/mobile-national-id"
PATH_CARD_NATIONAL_ID = "/open-banking/service/info-matching/card-national-id"
PATH_IBAN_NATIONAL_ID = "/open-banking/service/info-matching/iban-national-id"

STATUS_OK = 1
STATUS_TOKEN_INVALID = 4
STATUS_TOKEN_EXPIRED = 5
STATUS_WRONG_PASSWORD = 6
STATUS_INQUIRY_LIMIT = 9  # "insufficient banking wallet balance": no more paid inquiries for now
STATUS_INVALID_INPUT = 10
STATUS_UPSTREAM_ERROR = 11
STATUS_REFRESH_TOKEN_INVALID = 13
_OK_STRINGS = frozenset({"1", "ok"})

API_KEY_LIFETIME_DEFAULT_S = 24 * 3600
TEHRAN = timezone(timedelta(hours=3, minutes=30))

# Request fields.
F_APPLICATION_ID = "application_id"
F_ACCESS_PASSWORD = "access_password"
F_REFRESH_TOKEN = "refresh_token"
F_CARD = "card"
F_IBAN = "iban"
F_NATIONAL_ID = "national_id"
F_MOBILE = "mobile_number"
F_CARD_NUMBER = "card_number"
F_BIRTH_DATE = "birth_date"  # documented as required by the digest; never sent (assumed optional)
# Answer fields.
A_STATUS = "status"
A_DATA = "data"
A_MESSAGE = "message"
A_API_KEY = "api_key"
A_API_KEY_EXPIRE = "api_key_expire_date"
CARD_IBAN = "iban"  # assumed
CARD_OWNER = "name"  # assumed
CARD_BANK = "bank_name"  # assumed
IBAN_OWNERS = "owners"  # assumed: a list of full names
IBAN_BANK = "bank_name"  # assumed
IBAN_ACCOUNT_STATUS = "account_status"  # assumed: e.g. "active"
MATCHED = "is_matched"
_TRUE = (True, 1, "true", "1")
_FALSE = (False, 0, "false", "0")


class MalformedAnswer(Exception):
    """The answer does not have the shape this module expects (the client maps it to ProviderUnavailable)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    value: str
    expires_at_s: float  # epoch seconds

    def __repr__(self) -> str:  # the key itself never reaches a log line
        return f"ApiKey(expires_at_s={self.expires_at_s})"


@dataclass(frozen=True, slots=True)
class CardIbanInfo:
    """What the provider says about a card: its account's IBAN, the owner, and the bank.

    ``bank`` is the name from our own table for the IBAN's bank code when we know the code, else
    the name the provider reported (the client fills it in after validating the IBAN).
    """

    iban: str
    owner_name: str
    bank: str | None


@dataclass(frozen=True, slots=True)
class IbanInfo:
    iban: str
    owners: tuple[str, ...]
    bank: str | None
    account_status: str | None


class Outcome:
    """What an answer means to the client, decided by ``classify``."""

    OK = "ok"
    AUTH = "auth"  # the key is invalid or expired: refresh once and retry
    INVALID_INPUT = "invalid_input"  # the card or IBAN is unknown/invalid
    RETRYABLE = "retryable"  # 5xx or the provider's own upstream failed
    LIMIT = "limit"  # the inquiry limit (paid inquiries) is reached: not retried, the caller says so
    FAILED = "failed"  # anything else: credentials rejected, unexpected status


def refresh_body(*, application_id: str, access_password: str, refresh_token: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_REFRESH_TOKEN: refresh_token}


def card_to_iban_body(*, application_id: str, access_password: str, card: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_CARD: card}


def iban_inquiry_body(*, application_id: str, access_password: str, iban: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_IBAN: iban}


def shahkar_body(*, application_id: str, access_password: str, national_code: str, mobile: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_NATIONAL_ID: national_code,
            F_MOBILE: mobile}


def card_match_body(*, application_id: str, access_password: str, national_code: str, card: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_NATIONAL_ID: national_code,
            F_CARD_NUMBER: card}


def iban_match_body(*, application_id: str, access_password: str, national_code: str, iban: str) -> dict[str, str]:
    return {F_APPLICATION_ID: application_id, F_ACCESS_PASSWORD: access_password, F_NATIONAL_ID: national_code,
            F_IBAN: iban}


def match_answer(matched: bool) -> dict[str, Any]:
    return ok_answer({MATCHED: matched})


def ok_answer(data: Mapping[str, Any]) -> dict[str, Any]:
    return {A_STATUS: STATUS_OK, A_DATA: dict(data), A_MESSAGE: "request succeeded"}


def error_answer(status: int, message: str) -> dict[str, Any]:
    return {A_STATUS: status, A_DATA: None, A_MESSAGE: message}


def answer_status(body: Any) -> int | str | None:
    """The ``status`` of a JSON object answer (int, or the string as sent), None when absent."""
    if not isinstance(body, Mapping):
        return None
    status = body.get(A_STATUS)
    if isinstance(status, bool):
        return None
    if isinstance(status, str) and status.strip().isdigit():
        return int(status.strip())
    return status if isinstance(status, (int, str)) else None


def classify(http_status: int, body: Any) -> str:
    """Map (HTTP status, decoded JSON or None) to an ``Outcome``."""
    if http_status >= 500:
        return Outcome.RETRYABLE
    status = answer_status(body)
    if http_status == 401 or status in (STATUS_TOKEN_INVALID, STATUS_TOKEN_EXPIRED):
        return Outcome.AUTH
    if http_status == 429 or status == STATUS_INQUIRY_LIMIT:
        return Outcome.LIMIT
    if status == STATUS_INVALID_INPUT:
        return Outcome.INVALID_INPUT
    if status == STATUS_UPSTREAM_ERROR:
        return Outcome.RETRYABLE
    if http_status == 200 and (status == STATUS_OK or (isinstance(status, str) and status.lower() in _OK_STRINGS)):
        return Outcome.OK
    return Outcome.FAILED


def _data(body: Any) -> Mapping[str, Any]:
    data = body.get(A_DATA) if isinstance(body, Mapping) else None
    if not isinstance(data, Mapping):
        raise MalformedAnswer("the answer has no data object")
    return data


def _text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedAnswer(f"the answer's data.{key} is missing or not a string")
    return value.strip()


def _expiry_s(raw: Any, *, now_s: float) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > now_s:
        return float(raw)
    if isinstance(raw, str) and raw.strip():
        text = raw.strip()
        if text.isdigit():
            return float(text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            # A naive date-time from an Iranian service is most likely Tehran local time (UTC+3:30);
            # reading it as UTC would refresh 3.5 h late, so assume the earlier, Tehran reading.
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=TEHRAN)
            return moment.timestamp()
    return now_s + API_KEY_LIFETIME_DEFAULT_S


def parse_api_key(body: Any, *, now_s: float) -> ApiKey:
    data = _data(body)
    value = _text(data, A_API_KEY)
    assert value is not None
    return ApiKey(value=value, expires_at_s=_expiry_s(data.get(A_API_KEY_EXPIRE), now_s=now_s))


def parse_card_to_iban(body: Any) -> CardIbanInfo:
    data = _data(body)
    iban, owner = _text(data, CARD_IBAN), _text(data, CARD_OWNER)
    assert iban is not None and owner is not None
    return CardIbanInfo(iban=iban, owner_name=owner, bank=_text(data, CARD_BANK, required=False))


def parse_iban_inquiry(body: Any) -> IbanInfo:
    data = _data(body)
    iban = _text(data, F_IBAN)
    owners = data.get(IBAN_OWNERS)
    if not isinstance(owners, list) or not owners or not all(isinstance(o, str) and o.strip() for o in owners):
        raise MalformedAnswer(f"the answer's data.{IBAN_OWNERS} is not a non-empty list of names")
    assert iban is not None
    return IbanInfo(
        iban=iban,
        owners=tuple(o.strip() for o in owners),
        bank=_text(data, IBAN_BANK, required=False),
        account_status=_text(data, IBAN_ACCOUNT_STATUS, required=False),
    )


def parse_match(body: Any) -> bool:
    """``data.is_matched`` of an info-matching answer. Anything but a clear yes or no is malformed."""
    value = _data(body).get(MATCHED)
    if isinstance(value, str):
        value = value.strip().lower()
    if value in _TRUE and not isinstance(value, float):
        return True
    if value in _FALSE and not isinstance(value, float):
        return False
    raise MalformedAnswer(f"the answer's data.{MATCHED} is not a boolean")
