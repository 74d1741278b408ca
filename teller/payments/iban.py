"""Iranian Sheba numbers (IBANs): ``IR`` + 24 digits, ISO 7064 mod-97-10 check, bank from digits 5-7.

Normalization accepts what users paste: lowercase ``ir``, spaces and dashes, Persian and
Arabic-Indic digits, and the 24 digits alone (``IR`` is then prepended, since Iranian bank apps
often show the Sheba without it). Anything else is ``InvalidIban``.
"""

from __future__ import annotations

import re

from teller.errors import InvalidIban
from teller.payments.banks import BANK_BY_IBAN_CODE
from teller.payments.digits import strip_separators, to_ascii_digits

__all__ = [
    "IBAN_LEN",
    "IBAN_INPUT_LEN_MAX",
    "build_iban",
    "iban_bank",
    "iban_bank_code",
    "iban_check_valid",
    "mask_iban",
    "normalize_iban",
    "parse_iban",
]

IBAN_LEN = 26  # "IR" + 2 check digits + 22 (3 bank code + 19 account)
IBAN_INPUT_LEN_MAX = 64
_COUNTRY = "IR"
_BBAN_DIGITS = 22
_IBAN_RE = re.compile(r"IR[0-9]{24}")
_SHOWN_HEAD = 7  # "IR", check digits, bank code
_SHOWN_TAIL = 4


def normalize_iban(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidIban("IBAN must be a string, e.g. \"IR060170000000100324200001\"")
    if len(text) > IBAN_INPUT_LEN_MAX:
        raise InvalidIban("IBAN is too long")
    value = strip_separators(to_ascii_digits(text.strip())).upper()
    if len(value) == IBAN_LEN - len(_COUNTRY) and value.isascii() and value.isdigit():
        value = _COUNTRY + value
    return value


def _mod97(iban: str) -> int:
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97


def iban_check_valid(iban: str) -> bool:
    """ISO 7064 mod-97-10 over a normalized ``IR`` IBAN."""
    return _IBAN_RE.fullmatch(iban) is not None and _mod97(iban) == 1


def parse_iban(text: object) -> str:
    """Normalize and validate; returns the 26-character IBAN or raises ``InvalidIban``."""
    iban = normalize_iban(text)
    if not iban.startswith(_COUNTRY):
        raise InvalidIban("an Iranian IBAN (Sheba) starts with IR")
    if _IBAN_RE.fullmatch(iban) is None:
        raise InvalidIban("an Iranian IBAN (Sheba) is IR followed by exactly 24 digits")
    if _mod97(iban) != 1:
        raise InvalidIban("IBAN fails the checksum; check for a mistyped digit")
    return iban


def iban_bank_code(iban: str) -> str:
    return iban[4:7]


def iban_bank(iban: str) -> str | None:
    """The bank named by the IBAN's bank code, or None for a code not in the table."""
    bank = BANK_BY_IBAN_CODE.get(iban_bank_code(iban))
    return bank.name if bank else None


def mask_iban(iban: str) -> str:
    """``IR06017***************0001``: country, check digits and bank code, then the last four."""
    return iban[:_SHOWN_HEAD] + "*" * (len(iban) - _SHOWN_HEAD - _SHOWN_TAIL) + iban[-_SHOWN_TAIL:]


def build_iban(*, bank_code: str, account: str) -> str:
    """An ``IR`` IBAN for a 3-digit bank code and a 19-digit account part, check digits computed."""
    bban = bank_code + account
    if len(bank_code) != 3 or len(bban) != _BBAN_DIGITS or not bban.isascii() or not bban.isdigit():
        raise ValueError("bank_code must be 3 digits and account 19 digits")
    check = 98 - _mod97(_COUNTRY + "00" + bban)
    return f"{_COUNTRY}{check:02d}{bban}"
