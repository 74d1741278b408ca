"""Addresses from user input: ``parse_address`` is the only door, and it answers checksummed."""

from __future__ import annotations

import re

from eth_utils import to_checksum_address

from teller.errors import InvalidAddress

ADDRESS_TEXT_LEN_MAX = 64  # bounds the work on hostile input before any regex or hashing
_HEX40 = re.compile(r"0x[0-9a-fA-F]{40}")
ZERO_ADDRESS = "0x" + "0" * 40


def parse_address(text: str) -> str:
    """Parse a user's address: ``0x`` + 40 hex digits, surrounding whitespace ignored.

    All-lowercase and all-uppercase hex carry no checksum and are accepted; mixed case must pass EIP-55.
    The zero address is refused (sending there burns the money). Returns the EIP-55 checksummed form.
    """
    if not isinstance(text, str) or len(text) > ADDRESS_TEXT_LEN_MAX:
        raise InvalidAddress("not an address")
    text = text.strip()
    if not _HEX40.fullmatch(text):
        raise InvalidAddress("an address is 0x followed by 40 hexadecimal digits")
    digits = text[2:]
    checksummed = to_checksum_address(text)
    if digits != digits.lower() and digits != digits.upper() and text != checksummed:
        raise InvalidAddress("the address checksum (EIP-55 mixed case) does not match")
    if checksummed == ZERO_ADDRESS:
        raise InvalidAddress("the zero address cannot receive funds")
    return checksummed


def normalize_address(address: str) -> str:
    """Trusted input (config, our own derivations) to the chain types' lowercase form; asserts shape."""
    lowered = address.lower()
    assert _HEX40.fullmatch(lowered), f"not an address: {address!r}"
    return lowered


def checksum(address: str) -> str:
    return to_checksum_address(address)

