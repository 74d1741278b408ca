"""Amounts at the edge: decimal strings <-> integers in the asset's smallest unit.

There is no rounding anywhere: a string with more fractional digits than the asset has is
rejected, never rounded. No float ever touches an amount.
"""

from __future__ import annotations

import re

from teller.errors import InvalidAmount

__all__ = ["parse_amount", "format_amount", "AMOUNT_TEXT_LEN_MAX"]

# A bound on what we even try to parse: 78 digits hold any uint256, plus a dot.
AMOUNT_TEXT_LEN_MAX = 96
_AMOUNT_RE = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")


def parse_amount(text: object, decimals: int, *, allow_zero: bool = False) -> int:
    """Parse a display-unit decimal string ("12.5") into smallest units (12_500_000 for 6 decimals).

    Rejects: non-strings (JSON numbers included), signs, exponents, blanks, over-precise values,
    zero (unless ``allow_zero``) and absurdly long text.
    """
    if not isinstance(text, str):
        raise InvalidAmount("amount must be a decimal string, e.g. \"12.5\"")
    if len(text) > AMOUNT_TEXT_LEN_MAX:
        raise InvalidAmount("amount is too long")
    match = _AMOUNT_RE.fullmatch(text)
    if match is None:
        raise InvalidAmount("amount must be a positive decimal string, e.g. \"12.5\"")
    frac = match.group("frac") or ""
    if len(frac) > decimals:
        raise InvalidAmount(f"amount has more than {decimals} decimal places")
    minor = int(match.group("int")) * 10**decimals + int(frac.ljust(decimals, "0") or "0")
    if minor == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if minor >= 2**256:
        raise InvalidAmount("amount is too large")
    return minor


def format_amount(minor: int, decimals: int) -> str:
    """Format smallest units as a display decimal string without trailing zeros ("12.5")."""
    if type(minor) is not int:  # noqa: E721 - bool and float are both wrong here
        raise TypeError(f"amount must be an int, got {type(minor).__name__}")
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"
