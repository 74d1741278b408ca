"""parse_address: what a user may type as a withdrawal address."""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from teller.chain.address import parse_address
from teller.errors import InvalidAddress

ANVIL_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def eip55(digits_lower: str) -> str:
    """An independent EIP-55 oracle: uppercase each hex letter whose nibble of keccak(lowercase) >= 8."""
    digest = keccak(text=digits_lower).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(digits_lower))


def test_accepts_checksummed_lower_and_upper_forms() -> None:
    assert parse_address(ANVIL_0) == ANVIL_0
    assert parse_address(ANVIL_0.lower()) == ANVIL_0
    assert parse_address("0x" + ANVIL_0[2:].upper()) == ANVIL_0
    assert parse_address(f"  {ANVIL_0}\n") == ANVIL_0


@pytest.mark.parametrize("text", [
    "", "0x", "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb9226",
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb922666", "0xg39fd6e51aad88f6f4ce6ab8827279cfffb92266",
    "0X" + ANVIL_0[2:], "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266",  # one letter's case flipped
    "0x" + "0" * 40, "0x_39fd6e51aad88f6f4ce6ab8827279cfffb9226", "x" * 10_000,
    "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266\x00",
])
def test_refuses_non_addresses_and_bad_checksums(text: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        parse_address(text)
    assert info.value.code == "invalid_address"


@given(st.binary(min_size=20, max_size=20).filter(any))
def test_every_form_of_an_address_parses_to_its_checksum(raw: bytes) -> None:
    expected = eip55(raw.hex())
    assert parse_address("0x" + raw.hex()) == expected
    assert parse_address("0x" + raw.hex().upper()) == expected
    assert parse_address(expected) == expected


@given(st.binary(min_size=20, max_size=20).filter(any), st.data())
def test_flipping_one_letter_of_a_checksummed_address_is_refused(raw: bytes, data: st.DataObject) -> None:
    good = eip55(raw.hex())
    letters = [i for i, c in enumerate(good) if i >= 2 and c.isalpha()]
    if not letters:
        return
    i = data.draw(st.sampled_from(letters))
    flipped = good[:i] + good[i].swapcase() + good[i + 1:]
    digits = flipped[2:]
    if digits in (digits.lower(), digits.upper()):
        assert parse_address(flipped) == good  # the flip made it single-case: no checksum to check
    else:
        with pytest.raises(InvalidAddress):
            parse_address(flipped)


@given(st.text(max_size=80))
def test_any_text_is_an_address_or_invalid_address(text: str) -> None:
    try:
        result = parse_address(text)
    except InvalidAddress:
        return
    assert result == eip55(result[2:].lower())
