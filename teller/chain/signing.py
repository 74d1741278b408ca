"""Build and sign EIP-1559 (type 2) transactions: pure functions, no I/O.

eth-account signs through eth-keys, which uses coincurve (libsecp256k1) when it is installed; FIELD-NOTES
measured ~1,150 signatures/s with it against ~150/s in pure Python. Each call here is CPU-bound for about a
millisecond, so the signer actor runs it off the event loop.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from teller.chain.erc20 import UINT256_MAX, encode_transfer
from teller.chain.types import SignedTx

NATIVE_TRANSFER_GAS = 21_000
GAS_LIMIT_MAX = 30_000_000  # one block's worth; anything above is a bug in the caller


def sign_eip1559(
    key: LocalAccount | bytes,
    *,
    chain_id: int,
    nonce: int,
    to: str,
    value_wei: int,
    gas: int,
    max_fee_per_gas_wei: int,
    max_priority_fee_per_gas_wei: int,
    data: bytes = b"",
) -> SignedTx:
    """Sign one type-2 transaction; returns its raw bytes and hash (lowercase 0x hex)."""
    if chain_id <= 0 or nonce < 0:
        raise ValueError("chain_id must be positive and nonce non-negative")
    if not 0 <= value_wei <= UINT256_MAX:
        raise ValueError("value out of uint256 range")
    if not 0 < gas <= GAS_LIMIT_MAX:
        raise ValueError(f"gas must be in (0, {GAS_LIMIT_MAX}]")
    if not 0 <= max_priority_fee_per_gas_wei <= max_fee_per_gas_wei:
        raise ValueError("need 0 <= max_priority_fee_per_gas <= max_fee_per_gas")
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to_checksum_address(to),
        "value": value_wei,
        "gas": gas,
        "maxFeePerGas": max_fee_per_gas_wei,
        "maxPriorityFeePerGas": max_priority_fee_per_gas_wei,
        "data": data,
        "accessList": [],
    }
    signed = Account.sign_transaction(tx, key.key if isinstance(key, LocalAccount) else key)
    return SignedTx(raw=bytes(signed.raw_transaction), tx_hash="0x" + bytes(signed.hash).hex(), nonce=nonce)


def sign_native_transfer(
    key: LocalAccount | bytes,
    *,
    chain_id: int,
    nonce: int,
    to: str,
    amount_wei: int,
    max_fee_per_gas_wei: int,
    max_priority_fee_per_gas_wei: int,
    gas: int = NATIVE_TRANSFER_GAS,
) -> SignedTx:
    """A plain coin transfer. 21,000 gas suffices for an account without code; a contract recipient may
    need more (pass ``gas`` from ``ChainClient.estimate_gas``)."""
    return sign_eip1559(
        key, chain_id=chain_id, nonce=nonce, to=to, value_wei=amount_wei, gas=gas,
        max_fee_per_gas_wei=max_fee_per_gas_wei, max_priority_fee_per_gas_wei=max_priority_fee_per_gas_wei,
    )


def sign_token_transfer(
    key: LocalAccount | bytes,
    *,
    chain_id: int,
    nonce: int,
    token: str,
    to: str,
    amount_minor: int,
    gas: int,
    max_fee_per_gas_wei: int,
    max_priority_fee_per_gas_wei: int,
) -> SignedTx:
    """An ERC-20 ``transfer(to, amount_minor)`` call to ``token`` carrying no coin."""
    return sign_eip1559(
        key, chain_id=chain_id, nonce=nonce, to=token, value_wei=0, gas=gas,
        max_fee_per_gas_wei=max_fee_per_gas_wei, max_priority_fee_per_gas_wei=max_priority_fee_per_gas_wei,
        data=encode_transfer(to, amount_minor),
    )
