"""Digit normalization shared by card and Sheba parsing: Persian and Arabic-Indic digits to ASCII.

Only the three digit sets Iranian users actually type are mapped; every other character that
``str.isdigit`` would accept (superscripts, other scripts) stays as it is and is rejected by the
caller's pattern, so no exotic input ever becomes a number by accident.
"""

from __future__ import annotations

__all__ = ["to_ascii_digits", "strip_separators"]

_PERSIAN = "۰۱۲۳۴۵۶۷۸۹"  # U+06F0..U+06F9
_ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"  # U+0660..U+0669
_DIGITS = str.maketrans(_PERSIAN + _ARABIC_INDIC, "0123456789" * 2)
# Spaces, no-break spaces, tabs and the dashes people copy from bank apps; nothing else is dropped.
_SEPARATORS = str.maketrans("", "", " \u00a0\t-\u2010\u2011\u2012\u2013\u2212")


def to_ascii_digits(text: str) -> str:
    return text.translate(_DIGITS)


def strip_separators(text: str) -> str:
    return text.translate(_SEPARATORS)
