from hypothesis import given, strategies as st
import pytest

from teller.errors import InvalidAmount
from teller.money import format_amount, parse_amount


@given(minor=st.integers(min_value=1, max_value=2**255), decimals=st.integers(min_value=0, max_value=36))
def test_format_then_parse_round_trips(minor: int, decimals: int) -> None:
    assert parse_amount(format_amount(minor, decimals), decimals) == minor


@pytest.mark.parametrize("text", ["-1", "+1", "1e6", " 1", "1 ", "", ".5", "5.", "0x10", "١", "1,5", "NaN", "0", "0.000"])
def test_rejects_what_is_not_a_plain_positive_decimal(text: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(text, 6)


@pytest.mark.parametrize("value", [1, 1.5, None, True, ["1"]])
def test_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(value, 6)


def test_rejects_over_precise_amounts_instead_of_rounding() -> None:
    with pytest.raises(InvalidAmount):
        parse_amount("1.0000001", 6)
    assert parse_amount("1.000001", 6) == 1_000_001


def test_format_refuses_floats() -> None:
    with pytest.raises(TypeError):
        format_amount(1.5, 6)  # type: ignore[arg-type]
