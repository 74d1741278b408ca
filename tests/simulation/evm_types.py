"""The simulated node's records: transactions (decoded from real signed bytes), blocks, receipts, logs.

Plain frozen dataclasses with ints for amounts and lowercase ``0x`` hex for addresses and hashes, as in
``teller.chain.types``. ``decode_raw_transaction`` reads the bytes a wallet signs (EIP-1559 type 2 and
legacy, EIP-155 or not) with ``rlp`` and recovers the sender with eth-account, as a node does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import rlp
from eth_account import Account
from eth_utils import keccak

__all__ = [
    "SimBlock",
    "SimLog",
    "SimReceipt",
    "SimTx",
    "Transfer",
    "TxRejected",
    "TxStatus",
    "decode_raw_transaction",
    "intrinsic_gas",
]

TX_GAS = 21_000
CALLDATA_ZERO_BYTE_GAS = 4
CALLDATA_NONZERO_BYTE_GAS = 16
RAW_TX_BYTES_MAX = 128 * 1024  # geth's txMaxSize


class TxRejected(Exception):
    """The node refuses a transaction; ``message`` is the text geth/anvil answer (Teller matches on it)."""

    def __init__(self, message: str, *, code: int = -32000) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class SimTx:
    tx_hash: str
    sender: str
    nonce: int
    to: str | None
    value_wei: int
    data: bytes
    gas: int
    max_fee_per_gas_wei: int  # legacy: the gas price
    max_priority_fee_per_gas_wei: int  # legacy: the gas price
    tx_type: int  # 0 legacy, 2 EIP-1559
    chain_id: int | None
    v: int = 0
    r: int = 0
    s: int = 0

    def price_at(self, base_fee_wei: int) -> int:
        """The effective gas price in a block of this base fee (legacy: the gas price)."""
        if self.tx_type == 0:
            return self.max_fee_per_gas_wei
        return min(self.max_fee_per_gas_wei, base_fee_wei + self.max_priority_fee_per_gas_wei)

    def tip_at(self, base_fee_wei: int) -> int:
        return self.price_at(base_fee_wei) - base_fee_wei

    @property
    def cost_max_wei(self) -> int:
        """What the sender must hold to be admitted: value plus the whole gas at the max fee."""
        return self.value_wei + self.gas * self.max_fee_per_gas_wei


@dataclass(frozen=True, slots=True)
class SimLog:
    address: str
    topics: tuple[str, ...]
    data: str
    log_index: int  # within its block
    tx_index: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class SimReceipt:
    tx: SimTx
    tx_index: int
    succeeded: bool
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price_wei: int
    logs: tuple[SimLog, ...]


@dataclass(frozen=True, slots=True)
class Transfer:
    """Value that arrived on the canonical chain: native (``token`` None) or an ERC-20 Transfer log."""

    token: str | None
    from_address: str
    to_address: str
    amount_minor: int
    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int | None  # None for native value


@dataclass(slots=True)
class SimBlock:
    number: int
    block_hash: str
    parent_hash: str
    timestamp_s: int
    base_fee_per_gas_wei: int
    gas_limit: int
    gas_used: int
    receipts: tuple[SimReceipt, ...]
    # (kind, key, delta) applied when the block was mined; undone in reverse on a reorg
    journal: list[tuple[str, object, int]] = field(default_factory=list, repr=False)

    @property
    def txs(self) -> tuple[SimTx, ...]:
        return tuple(r.tx for r in self.receipts)


class TxStatus(enum.Enum):
    UNKNOWN = "unknown"  # never seen, or discarded by a reorg or the driver
    PENDING = "pending"  # in the mempool (executable or waiting for a nonce or a lower base fee)
    SUCCEEDED = "succeeded"  # on the canonical chain, status 1
    REVERTED = "reverted"  # on the canonical chain, status 0 (gas and nonce used)
    DROPPED = "dropped"  # accepted, then gone from the pool without being mined


def intrinsic_gas(data: bytes) -> int:
    zeros = data.count(0)
    return TX_GAS + zeros * CALLDATA_ZERO_BYTE_GAS + (len(data) - zeros) * CALLDATA_NONZERO_BYTE_GAS


def _int(item: bytes) -> int:
    return int.from_bytes(item, "big")


def _to(item: bytes) -> str | None:
    if len(item) not in (0, 20):
        raise TxRejected("rlp: input string too long for common.Address")
    return "0x" + item.hex() if item else None


def decode_raw_transaction(raw: bytes) -> SimTx:
    """A signed transaction from its bytes, sender recovered; ``TxRejected`` with a node's words if not."""
    if len(raw) > RAW_TX_BYTES_MAX:
        raise TxRejected("oversized data")
    if not raw:
        raise TxRejected("typed transaction too short")
    try:
        if raw[0] == 2:
            fields = rlp.decode(raw[1:])
            if not isinstance(fields, list) or len(fields) != 12:
                raise TxRejected("rlp: too few elements for types.DynamicFeeTx")
            chain_id, nonce, tip, max_fee, gas, to, value, data, _access, y, r, s = fields
            tx_type, chain, v = 2, _int(chain_id), _int(y)
            max_fee_wei, tip_wei = _int(max_fee), _int(tip)
        elif raw[0] >= 0xc0:
            fields = rlp.decode(raw)
            if not isinstance(fields, list) or len(fields) != 9:
                raise TxRejected("rlp: too few elements for types.LegacyTx")
            nonce, gas_price, gas, to, value, data, v_raw, r, s = fields
            v = _int(v_raw)
            tx_type, chain = 0, ((v - 35) // 2 if v >= 35 else None)
            max_fee_wei = tip_wei = _int(gas_price)
        else:
            raise TxRejected("transaction type not supported")
        sender = Account.recover_transaction(raw).lower()
    except TxRejected:
        raise
    except Exception as exc:  # noqa: BLE001 - rlp and eth-account raise many types for bad bytes
        raise TxRejected(f"rlp: invalid transaction ({type(exc).__name__})") from None
    return SimTx(
        tx_hash="0x" + keccak(raw).hex(), sender=sender, nonce=_int(nonce), to=_to(to), value_wei=_int(value),
        data=bytes(data), gas=_int(gas), max_fee_per_gas_wei=max_fee_wei, max_priority_fee_per_gas_wei=tip_wei,
        tx_type=tx_type, chain_id=chain, v=v, r=_int(r), s=_int(s),
    )
