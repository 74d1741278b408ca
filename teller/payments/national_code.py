"""Iranian national codes (کد ملی) and mobile numbers: normalize, validate, mask.

A national code is 10 digits; the last is a check digit over the first nine with weights 10..2:
``r = sum(d[i] * (10 - i)) % 11``, check = ``r`` if ``r < 2`` else ``11 - r``. A code of ten
equal digits passes that arithmetic and is refused anyway (no such code is issued). Persian and
Arabic-Indic digits, spaces and dashes are accepted and normalized; nothing else is.

A mobile number here is what Telegram's contact carries (``989121234567``, ``+98 912 ...``),
normalized to the ``09xxxxxxxxx`` form Iranian inquiry services take. Only Iranian mobiles
(``+98 9..``) are accepted: Shahkar knows no other.

Both are personal data: they never reach a log line; the API shows only the masked forms.
"""

from __future__ import annotations

import re

from teller.errors import InvalidContact, InvalidNationalCode
from teller.payments.digits import strip_separators, to_ascii_digits

__all__ = [
    "NATIONAL_CODE_DIGITS",
    "NATIONAL_CODE_INPUT_LEN_MAX",
    "national_code_check_digit",
    "national_code_valid",
    "parse_national_code",
    "mask_national_code",
    "parse_mobile",
    "mask_mobile",
]

NATIONAL_CODE_DIGITS = 10
NATIONAL_CODE_INPUT_LEN_MAX = 32  # 10 digits with separators fit easily; we never look further
MOBILE_INPUT_LEN_MAX = 32
_CODE_RE = re.compile(r"[0-9]{10}")
_MOBILE_RE = re.compile(r"09[0-9]{9}")
_SHOWN_TAIL = 4


def national_code_check_digit(first_nine: str) -> int:
    """The check digit of nine ASCII digits (weights 10..2, mod 11)."""
    assert len(first_nine) == NATIONAL_CODE_DIGITS - 1 and first_nine.isascii() and first_nine.isdigit()
    r = sum(int(d) * (NATIONAL_CODE_DIGITS - i) for i, d in enumerate(first_nine)) % 11
    return r if r < 2 else 11 - r


def national_code_valid(code: str) -> bool:
    """True for 10 ASCII digits with a correct check digit that are not all the same digit."""
    if _CODE_RE.fullmatch(code) is None or len(set(code)) == 1:
        return False
    return national_code_check_digit(code[:9]) == int(code[9])


def parse_national_code(text: object) -> str:
    """Normalize user input and validate it; raises ``InvalidNationalCode`` (never echoing the input)."""
    if not isinstance(text, str):
        raise InvalidNationalCode("the national code must be a string of 10 digits")
    if len(text) > NATIONAL_CODE_INPUT_LEN_MAX:
        raise InvalidNationalCode("the national code is too long")
    code = strip_separators(to_ascii_digits(text.strip()))
    if _CODE_RE.fullmatch(code) is None:
        raise InvalidNationalCode(f"the national code must have exactly {NATIONAL_CODE_DIGITS} digits")
    if not national_code_valid(code):
        raise InvalidNationalCode("the national code fails its check digit; check for a mistyped digit")
    return code


def mask_national_code(code: str) -> str:
    """``******4321``: the last four only."""
    assert _CODE_RE.fullmatch(code), "mask_national_code takes a validated code"
    return "*" * (NATIONAL_CODE_DIGITS - _SHOWN_TAIL) + code[-_SHOWN_TAIL:]


def parse_mobile(text: object) -> str:
    """A Telegram contact's phone number as ``09xxxxxxxxx``; ``InvalidContact`` for anything not Iranian."""
    if not isinstance(text, str) or len(text) > MOBILE_INPUT_LEN_MAX:
        raise InvalidContact("the contact carries no phone number")
    digits = strip_separators(to_ascii_digits(text.strip())).removeprefix("+")
    if digits.startswith("0098"):
        digits = digits[2:]
    if digits.startswith("98"):
        digits = "0" + digits[2:]
    if _MOBILE_RE.fullmatch(digits) is None:
        raise InvalidContact("an Iranian mobile number (+98 9xx xxx xxxx) is required")
    return digits


def mask_mobile(mobile: str) -> str:
    """``0912*****67``: the operator prefix and the last two."""
    assert _MOBILE_RE.fullmatch(mobile), "mask_mobile takes a normalized mobile"
    return mobile[:4] + "*" * 5 + mobile[-2:]
