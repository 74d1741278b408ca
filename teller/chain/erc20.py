"""The ERC-20 surface Teller uses, encoded and decoded by hand.

FIELD-NOTES: web3's formatting and event decoding cost 10-14x the raw JSON, and a Transfer log has a fixed
layout, so the watcher decodes it here: topic0 = keccak("Transfer(address,address,uint256)"), topic1 = from,
topic2 = to (each a 32-byte word whose top 12 bytes are zero), data = the amount as one 32-byte word.
ERC-721 emits the same topic0 with the token id as a fourth topic and empty data; that shape is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from teller.chain.types import TransferLog

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")  # balanceOf(address)
UINT256_MAX = 2**256 - 1
_ADDRESS_PAD = "0" * 24
# int(text, 16) alone would also take "_", "+" and spaces; the node's words are plain hex.
_WORD = re.compile(r"0x[0-9a-fA-F]{64}")
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")

# The standard subset, for anyone who wants web3 contract objects (tests, tools); the hot path never does.
ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
     "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "transferFrom", "stateMutability": "nonpayable",
     "inputs": [{"name": "from", "type": "address"}, {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "event", "name": "Transfer", "anonymous": False,
     "inputs": [{"name": "from", "type": "address", "indexed": True},
                {"name": "to", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
    {"type": "event", "name": "Approval", "anonymous": False,
     "inputs": [{"name": "owner", "type": "address", "indexed": True},
                {"name": "spender", "type": "address", "indexed": True},
                {"name": "value", "type": "uint256", "indexed": False}]},
]


def address_topic(address: str) -> str:
    """The 32-byte topic word for an address (to filter ``eth_getLogs`` by sender or recipient)."""
    return "0x" + _ADDRESS_PAD + _address_hex(address)


def encode_transfer(to: str, amount_minor: int) -> bytes:
    """Calldata for ``transfer(to, amount_minor)``."""
    if not 0 <= amount_minor <= UINT256_MAX:
        raise ValueError("amount out of uint256 range")
    return TRANSFER_SELECTOR + bytes.fromhex(_ADDRESS_PAD + _address_hex(to)) + amount_minor.to_bytes(32, "big")


def encode_balance_of(owner: str) -> bytes:
    return BALANCE_OF_SELECTOR + bytes.fromhex(_ADDRESS_PAD + _address_hex(owner))


def decode_transfer_calldata(data: bytes | str) -> tuple[str, int] | None:
    """``(to, amount_minor)`` when ``data`` is exactly a ``transfer(address,uint256)`` call, else None."""
    raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else data
    if len(raw) != 4 + 64 or raw[:4] != TRANSFER_SELECTOR or any(raw[4:16]):
        return None
    return "0x" + raw[16:36].hex(), int.from_bytes(raw[36:68], "big")


def decode_transfer_log(raw: Mapping[str, Any]) -> TransferLog | None:
    """Decode one raw JSON-RPC log object; None when it is not an ERC-20 Transfer (wrong topic0, ERC-721
    shape, malformed words) or is still pending (no block yet). Never raises on odd field *values*."""
    topics = raw.get("topics")
    data = raw.get("data")
    if not isinstance(topics, list) or len(topics) != 3 or not isinstance(data, str):
        return None
    if not isinstance(topics[0], str) or topics[0].lower() != TRANSFER_TOPIC:
        return None
    from_address = _topic_address(topics[1])
    to_address = _topic_address(topics[2])
    amount = _word(data)
    if from_address is None or to_address is None or amount is None:
        return None
    block_number = _quantity(raw.get("blockNumber"))
    log_index = _quantity(raw.get("logIndex"))
    tx_index = _quantity(raw.get("transactionIndex"))
    block_hash, tx_hash, token = raw.get("blockHash"), raw.get("transactionHash"), raw.get("address")
    if block_number is None or log_index is None or tx_index is None:
        return None
    if not (isinstance(block_hash, str) and isinstance(tx_hash, str) and isinstance(token, str)):
        return None
    return TransferLog(
        token=token.lower(),
        from_address=from_address,
        to_address=to_address,
        amount_minor=amount,
        tx_hash=tx_hash.lower(),
        log_index=log_index,
        block_number=block_number,
        block_hash=block_hash.lower(),
        transaction_index=tx_index,
        removed=bool(raw.get("removed", False)),
    )


def _address_hex(address: str) -> str:
    digits = address.removeprefix("0x").lower()
    if not _HEX40.fullmatch(digits):
        raise ValueError(f"not an address: {address!r}")
    return digits


def _word(text: Any) -> int | None:
    if not isinstance(text, str) or not _WORD.fullmatch(text):
        return None
    return int(text[2:], 16)


def _topic_address(topic: Any) -> str | None:
    if _word(topic) is None or topic[2:26] != _ADDRESS_PAD:  # _word checked it is a str
        return None
    return "0x" + topic[26:].lower()


def _quantity(text: Any) -> int | None:
    if not isinstance(text, str) or not _QUANTITY.fullmatch(text):
        return None
    return int(text, 16)
