"""National codes and Telegram mobiles: the check digit, normalization, masks, and everything else refused."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, strategies as st

from teller.errors import InvalidContact, InvalidNationalCode
from teller.payments.national_code import (
    mask_mobile,
    mask_national_code,
    national_code_check_digit,
    national_code_valid,
    parse_mobile,
    parse_national_code,
)

PERSIAN = "۰۱۲۳۴۵۶۷۸۹"
ARABIC = "٠١٢٣٤٥٦٧٨٩"
nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def _reference_valid(code: str) -> bool:
    """The rule as written in the brief, independently of the module."""
    if len(code) != 10 or not code.isascii() or not code.isdigit() or len(set(code)) == 1:
        return False
    r = sum(int(code[i]) * (10 - i) for i in range(9)) % 11
    return int(code[9]) == (r if r < 2 else 11 - r)


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    head = draw(nine_digits)
    code = head + str(national_code_check_digit(head))
    assume(len(set(code)) > 1)
    return code


def test_published_examples() -> None:
    assert parse_national_code("0012345679") == "0012345679"  # the contract's example
    assert parse_national_code("۰۰۱۲۳۴۵۶۷۹") == "0012345679"
    assert not national_code_valid("0012345678")
    assert not national_code_valid("1111111111") and _reference_valid("1111111111") is False


@given(code=st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_validity_agrees_with_the_rule(code: str) -> None:
    assert national_code_valid(code) == _reference_valid(code)


@given(code=valid_codes(), data=st.data())
def test_persian_arabic_digits_and_separators_are_the_same_code(code: str, data: st.DataObject) -> None:
    alphabet = data.draw(st.sampled_from(["0123456789", PERSIAN, ARABIC]))
    text = "".join(alphabet[int(d)] for d in code)
    sep = data.draw(st.sampled_from(["", " ", "-"]))
    text = sep.join(text[i:i + 3] for i in range(0, 10, 3))
    assert parse_national_code(f" {text} ") == code


@given(code=valid_codes(), pos=st.integers(0, 9), delta=st.integers(1, 9))
def test_one_mistyped_digit_is_refused(code: str, pos: int, delta: int) -> None:
    typo = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1:]
    # Weights 10..2 and 1 are all non-zero mod 11, so one changed digit always breaks the check,
    # except where r moves between 0/1 and 10 (both map onto a check digit of 0 or 1): compare to the rule.
    assert national_code_valid(typo) == _reference_valid(typo)
    if not _reference_valid(typo):
        with pytest.raises(InvalidNationalCode):
            parse_national_code(typo)


@given(text=st.text(max_size=60))
def test_any_text_is_a_valid_code_or_invalid_national_code(text: str) -> None:
    try:
        code = parse_national_code(text)
    except InvalidNationalCode as exc:
        assert exc.code == "invalid_national_code"
        assert len(text.strip()) < 4 or text.strip() not in exc.message  # never echoes the input (a "0" may stand in "10")
        return
    assert _reference_valid(code)


@pytest.mark.parametrize("bad", ["", "001234567", "00123456790", "0012345678", "0000000000", "5555555555",
                                 "00123a5679", "1" * 5000, None, 12345679, ["0012345679"], "٠٠١٢٣٤٥٦٧٨"])
def test_bad_codes(bad: object) -> None:
    with pytest.raises(InvalidNationalCode):
        parse_national_code(bad)


@given(code=valid_codes())
def test_mask_shows_the_last_four_only(code: str) -> None:
    masked = mask_national_code(code)
    assert masked == "******" + code[-4:]


@pytest.mark.parametrize(("raw", "mobile"), [("989121234567", "09121234567"), ("+989121234567", "09121234567"),
                                             ("+98 912 123 4567", "09121234567"), ("00989121234567", "09121234567"),
                                             ("09121234567", "09121234567"), ("+۹۸۹۱۲۱۲۳۴۵۶۷", "09121234567")])
def test_mobiles_from_telegram(raw: str, mobile: str) -> None:
    assert parse_mobile(raw) == mobile
    assert mask_mobile(mobile) == "0912*****67"


@pytest.mark.parametrize("bad", ["+14155550100", "+449121234567", "98912123456", "9891212345678", "+98 21 1234 5678",
                                 "", None, 989121234567, "+98912123456a", "9" * 100])
def test_foreign_or_malformed_mobiles_are_refused(bad: object) -> None:
    with pytest.raises(InvalidContact):
        parse_mobile(bad)
