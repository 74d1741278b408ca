"""What the chain clients return: plain frozen dataclasses, ints for amounts.

Conventions (every field, every class):
- addresses are lowercase ``0x`` hex, 42 characters (what the node sends; cheap to compare). Checksummed
  addresses appear only at the edges: ``parse_address`` for user input and the HTTP API for display.
- hashes are lowercase ``0x`` hex strings, 66 characters; calldata is a lowercase ``0x`` hex string.
- amounts are ``int`` in the smallest unit: ``value_wei`` for the native coin, ``amount_minor`` for tokens.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TxSummary:
    """A transaction as a block (or ``eth_getTransactionByHash``) lists it."""

    tx_hash: str
    from_address: str
    to_address: str | None  # None: contract creation
    value_wei: int
    input: str
    nonce: int
    block_number: int | None  # None: still pending
    block_hash: str | None
    transaction_index: int | None


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    block_hash: str
    parent_hash: str
    timestamp_s: int
    base_fee_per_gas_wei: int | None
    # Empty when the block was fetched without transactions (header only).
    transactions: tuple[TxSummary, ...] = ()


@dataclass(frozen=True, slots=True)
class TransferLog:
    """One ERC-20 ``Transfer(from, to, value)`` log. ``(tx_hash, log_index)`` identifies it on a chain."""

    token: str
    from_address: str
    to_address: str
    amount_minor: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    transaction_index: int
    removed: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    succeeded: bool  # status == 1; False: the transaction reverted (it still used gas and its nonce)
    gas_used: int
    effective_gas_price_wei: int
    from_address: str
    to_address: str | None
    contract_address: str | None
    # The ERC-20 Transfer logs the transaction emitted, in log order: what a token transfer really moved
    # (a token may answer ``false`` instead of reverting: status 1, no Transfer log).
    transfer_logs: tuple[TransferLog, ...] = ()

    @property
    def fee_wei(self) -> int:
        return self.gas_used * self.effective_gas_price_wei


@dataclass(frozen=True, slots=True)
class FeeSuggestion:
    """EIP-1559 fees for the next block. ``capped``: the cap cut ``max_fee_per_gas_wei`` below the
    suggestion, so the transaction may wait until the base fee falls."""

    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int
    base_fee_per_gas_wei: int
    capped: bool = False


class SendOutcome(enum.Enum):
    """How the node answered ``eth_sendRawTransaction``. Only ACCEPTED and ALREADY_KNOWN say the node holds
    the transaction; NONCE_TOO_LOW means *some* transaction used the nonce (look the hash up: it may be
    ours); REPLACEMENT_UNDERPRICED means another transaction with the nonce is pending; REJECTED carries
    the node's reason (insufficient funds, gas too low, ...) and does not prove it can never be mined
    elsewhere, since the same signed bytes may reach another node."""

    ACCEPTED = "accepted"
    ALREADY_KNOWN = "already_known"
    NONCE_TOO_LOW = "nonce_too_low"
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: SendOutcome
    tx_hash: str  # computed locally from the raw bytes, whatever the node answered
    reason: str = ""  # the node's message when it did not simply accept


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str
    nonce: int
