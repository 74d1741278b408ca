"""EIP-1559 signing, checked by decoding what was signed (landing on chain is in test_client)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes

from teller.chain.erc20 import decode_transfer_calldata
from teller.chain.keys import HdWallet
from teller.chain.signing import sign_eip1559, sign_native_transfer, sign_token_transfer

WALLET = HdWallet("test test test test test test test test test test test junk")
TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"


def decoded(raw: bytes) -> dict[str, object]:
    return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())


def test_native_transfer_carries_what_was_asked() -> None:
    signed = sign_native_transfer(WALLET.account(0), chain_id=31337, nonce=7, to=WALLET.address(1),
                                  amount_wei=10**18, max_fee_per_gas_wei=3 * 10**9, max_priority_fee_per_gas_wei=10**9)
    tx = decoded(signed.raw)
    assert signed.raw[0] == 2 and signed.nonce == 7
    assert signed.tx_hash == "0x" + keccak(signed.raw).hex()
    assert (tx["chainId"], tx["nonce"], tx["value"], tx["gas"]) == (31337, 7, 10**18, 21_000)
    assert (tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]) == (3 * 10**9, 10**9)
    assert Account.recover_transaction(signed.raw) == WALLET.address(0)


def test_token_transfer_calls_transfer_on_the_token() -> None:
    signed = sign_token_transfer(WALLET.private_key(2), chain_id=1, nonce=0, token=TOKEN, to=WALLET.address(3),
                                 amount_minor=12_500_000, gas=80_000, max_fee_per_gas_wei=10**10,
                                 max_priority_fee_per_gas_wei=10**9)
    tx = decoded(signed.raw)
    assert tx["value"] == 0 and "0x" + bytes(tx["to"]).hex() == TOKEN  # type: ignore[arg-type]
    assert decode_transfer_calldata(bytes(tx["data"])) == (WALLET.address(3).lower(), 12_500_000)  # type: ignore[arg-type]
    assert Account.recover_transaction(signed.raw) == WALLET.address(2)


def test_same_inputs_same_signature_different_fee_different_hash() -> None:
    args = dict(chain_id=1, nonce=3, to=WALLET.address(1), amount_wei=1, max_priority_fee_per_gas_wei=10**9)
    first = sign_native_transfer(WALLET.account(0), max_fee_per_gas_wei=2 * 10**9, **args)  # type: ignore[arg-type]
    again = sign_native_transfer(WALLET.account(0), max_fee_per_gas_wei=2 * 10**9, **args)  # type: ignore[arg-type]
    bumped = sign_native_transfer(WALLET.account(0), max_fee_per_gas_wei=3 * 10**9, **args)  # type: ignore[arg-type]
    assert first == again  # RFC 6979 deterministic nonces: a re-sign after a crash is the same tx
    assert bumped.tx_hash != first.tx_hash and bumped.nonce == first.nonce


@pytest.mark.parametrize("bad", [
    dict(nonce=-1), dict(chain_id=0), dict(value_wei=-1), dict(value_wei=2**256), dict(gas=0),
    dict(gas=10**9), dict(max_priority_fee_per_gas_wei=5 * 10**9), dict(max_priority_fee_per_gas_wei=-1),
])
def test_refuses_nonsense(bad: dict[str, int]) -> None:
    args = dict(chain_id=1, nonce=0, to=WALLET.address(1), value_wei=1, gas=21_000,
                max_fee_per_gas_wei=2 * 10**9, max_priority_fee_per_gas_wei=10**9)
    with pytest.raises(ValueError):
        sign_eip1559(WALLET.account(0), **{**args, **bad})  # type: ignore[arg-type]
