"""Iranian bank card numbers: normalize, validate (16 digits, Luhn), name the bank, mask, hash.

A card number is personal data. Outside this module it travels as a ``Card`` (whose repr is
masked), is stored as ``mask_card`` + ``card_hash`` (HMAC-SHA256 under a server secret, so a
stolen database cannot be brute-forced over the ~10^9 numbers a BIN leaves open without that
secret), and is never logged. An unknown BIN is accepted with ``bank = None``: the bank table is
informational and the provider's inquiry decides whether the card exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from teller.errors import InvalidCard
from teller.payments.banks import BANK_BY_BIN
from teller.payments.digits import strip_separators, to_ascii_digits

__all__ = [
    "Card",
    "CARD_DIGITS",
    "CARD_HASH_SECRET_LEN_MIN",
    "CARD_INPUT_LEN_MAX",
    "card_bank",
    "card_hash",
    "luhn_valid",
    "mask_card",
    "normalize_card",
    "parse_card",
]

CARD_DIGITS = 16
# Bound on the raw text we even look at: 16 digits with separators fit easily.
CARD_INPUT_LEN_MAX = 64
CARD_HASH_SECRET_LEN_MIN = 16
_BIN_DIGITS = 6
_LAST_DIGITS = 4
_CARD_RE = re.compile(r"[0-9]{16}")


def normalize_card(text: object) -> str:
    """Map Persian/Arabic-Indic digits to ASCII and drop spaces and dashes. No validation of length."""
    if not isinstance(text, str):
        raise InvalidCard("card number must be a string of digits")
    if len(text) > CARD_INPUT_LEN_MAX:
        raise InvalidCard("card number is too long")
    return strip_separators(to_ascii_digits(text.strip()))


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of ASCII digits."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _validated(text: object) -> str:
    number = normalize_card(text)
    if not number.isascii() or not number.isdigit():
        raise InvalidCard("card number must contain only digits")
    if _CARD_RE.fullmatch(number) is None:
        raise InvalidCard(f"card number must have exactly {CARD_DIGITS} digits")
    if not luhn_valid(number):
        raise InvalidCard("card number fails the checksum; check for a mistyped digit")
    return number


def card_bank(number: str) -> str | None:
    """The bank named by the card's first six digits, or None for a BIN not in the table."""
    bank = BANK_BY_BIN.get(number[:_BIN_DIGITS])
    return bank.name if bank else None


def mask_card(number: str) -> str:
    """``603799******7890``: the BIN and the last four, never the middle six."""
    assert len(number) == CARD_DIGITS, "mask_card takes a validated card number"
    hidden = CARD_DIGITS - _BIN_DIGITS - _LAST_DIGITS
    return number[:_BIN_DIGITS] + "*" * hidden + number[-_LAST_DIGITS:]


def card_hash(number: str, *, secret: bytes) -> str:
    """HMAC-SHA256 of the normalized number under a server secret, hex: store and match by this."""
    if len(secret) < CARD_HASH_SECRET_LEN_MIN:
        raise ValueError(f"the card hash secret must be at least {CARD_HASH_SECRET_LEN_MIN} bytes")
    assert _CARD_RE.fullmatch(number), "card_hash takes a validated card number"
    return hmac.new(secret, number.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, repr=False)
class Card:
    """A validated card. ``number`` is the full 16 digits: keep it in memory only."""

    number: str

    @property
    def masked(self) -> str:
        return mask_card(self.number)

    @property
    def bin(self) -> str:
        return self.number[:_BIN_DIGITS]

    @property
    def bank(self) -> str | None:
        return card_bank(self.number)

    def hash(self, *, secret: bytes) -> str:
        return card_hash(self.number, secret=secret)

    def __repr__(self) -> str:  # a Card in a traceback or log line shows only its mask
        return f"Card({self.masked})"

    __str__ = __repr__


def parse_card(text: object) -> Card:
    """Normalize and validate user input; raises ``InvalidCard`` with a message for the user."""
    return Card(_validated(text))
