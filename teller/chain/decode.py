"""Raw JSON-RPC objects (blocks, transactions, receipts) to the chain types, strictly.

A malformed field raises ``MalformedAnswer`` (the client turns it into ChainUnavailable: a node or proxy
that answers nonsense is an unavailable node), never a bare KeyError/ValueError that would hide a bug.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from teller.chain.erc20 import decode_transfer_log
from teller.chain.types import Block, Receipt, TransferLog, TxSummary

__all__ = ["MalformedAnswer", "decode_block", "decode_tx", "decode_receipt", "quantity"]

_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


class MalformedAnswer(Exception):
    """A node's answer lacks a field or has one of the wrong shape."""


def quantity(value: Any, what: str = "quantity") -> int:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise MalformedAnswer(f"{what}: not a hex quantity: {value!r:.80}")
    return int(value, 16)


def _opt_quantity(value: Any, what: str) -> int | None:
    return None if value is None else quantity(value, what)


def _hash(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise MalformedAnswer(f"{what}: not a 32-byte hash: {value!r:.80}")
    return value.lower()


def _opt_hash(value: Any, what: str) -> str | None:
    return None if value is None else _hash(value, what)


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise MalformedAnswer(f"{what}: not an address: {value!r:.80}")
    return value.lower()


def _opt_address(value: Any, what: str) -> str | None:
    return None if value is None else _address(value, what)


def _data(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise MalformedAnswer(f"{what}: not hex data")
    return value.lower()


def _obj(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise MalformedAnswer(f"{what}: not an object")
    return raw


def decode_tx(raw: Any) -> TxSummary:
    tx = _obj(raw, "transaction")
    return TxSummary(
        tx_hash=_hash(tx.get("hash"), "tx.hash"),
        from_address=_address(tx.get("from"), "tx.from"),
        to_address=_opt_address(tx.get("to"), "tx.to"),
        value_wei=quantity(tx.get("value"), "tx.value"),
        input=_data(tx.get("input", "0x"), "tx.input"),
        nonce=quantity(tx.get("nonce"), "tx.nonce"),
        block_number=_opt_quantity(tx.get("blockNumber"), "tx.blockNumber"),
        block_hash=_opt_hash(tx.get("blockHash"), "tx.blockHash"),
        transaction_index=_opt_quantity(tx.get("transactionIndex"), "tx.transactionIndex"),
    )


def decode_block(raw: Any, *, full_transactions: bool) -> Block:
    block = _obj(raw, "block")
    txs = block.get("transactions", [])
    if not isinstance(txs, list):
        raise MalformedAnswer("block.transactions: not a list")
    if full_transactions and any(not isinstance(tx, Mapping) for tx in txs):
        raise MalformedAnswer("block.transactions: hashes where objects were asked for")
    return Block(
        number=quantity(block.get("number"), "block.number"),
        block_hash=_hash(block.get("hash"), "block.hash"),
        parent_hash=_hash(block.get("parentHash"), "block.parentHash"),
        timestamp_s=quantity(block.get("timestamp"), "block.timestamp"),
        base_fee_per_gas_wei=_opt_quantity(block.get("baseFeePerGas"), "block.baseFeePerGas"),
        transactions=tuple(decode_tx(tx) for tx in txs) if full_transactions else (),
    )


def decode_receipt(raw: Any) -> Receipt:
    receipt = _obj(raw, "receipt")
    return Receipt(
        tx_hash=_hash(receipt.get("transactionHash"), "receipt.transactionHash"),
        block_number=quantity(receipt.get("blockNumber"), "receipt.blockNumber"),
        block_hash=_hash(receipt.get("blockHash"), "receipt.blockHash"),
        succeeded=quantity(receipt.get("status"), "receipt.status") == 1,
        gas_used=quantity(receipt.get("gasUsed"), "receipt.gasUsed"),
        effective_gas_price_wei=quantity(receipt.get("effectiveGasPrice"), "receipt.effectiveGasPrice"),
        from_address=_address(receipt.get("from"), "receipt.from"),
        to_address=_opt_address(receipt.get("to"), "receipt.to"),
        contract_address=_opt_address(receipt.get("contractAddress"), "receipt.contractAddress"),
        transfer_logs=_transfer_logs(receipt.get("logs")),
    )


def _transfer_logs(raw: Any) -> tuple[TransferLog, ...]:
    if not isinstance(raw, list):
        return ()
    logs = (decode_transfer_log(item) for item in raw if isinstance(item, Mapping))
    return tuple(log for log in logs if log is not None and not log.removed)
