"""The reconciler's judgements on their own: what is a finding, what waits for the node."""

from __future__ import annotations

from typing import Any

from teller.actors.reconcile_checks import OK, PENDING, UNVERIFIABLE, Finding, judge_deposit_tx, judge_withdrawal
from teller.chain.receipts import ReceiptWithLogs
from teller.chain.types import Receipt, TransferLog, TxSummary

TOKEN = "0x" + "aa" * 20
TO = "0x" + "bb" * 20
TX = "0x" + "01" * 32


def receipt(tx_hash: str = TX, *, ok: bool = True, logs: tuple[TransferLog, ...] = ()) -> ReceiptWithLogs:
    return ReceiptWithLogs(Receipt(tx_hash=tx_hash, block_number=7, block_hash="0x" + "02" * 32, succeeded=ok,
                                   gas_used=21_000, effective_gas_price_wei=1, from_address=TO, to_address=TO,
                                   contract_address=None), logs)


def log(amount: int, *, to: str = TO, token: str = TOKEN, index: int = 0) -> TransferLog:
    return TransferLog(token=token, from_address="0x" + "cc" * 20, to_address=to, amount_minor=amount, tx_hash=TX,
                       log_index=index, block_number=7, block_hash="0x" + "02" * 32, transaction_index=0)


def withdrawal(status: str) -> dict[str, Any]:
    return {"id": 5, "chain": "c", "status": status, "from_address": TO}


def attempt(tx_hash: str, nonce: int = 3) -> dict[str, Any]:
    return {"tx_hash": tx_hash, "nonce": nonce}


def deposit(i: int, amount: int, *, asset: str = "USDT", log_index: int = 0, address: str = TO) -> dict[str, Any]:
    return {"id": i, "asset": asset, "address": address, "amount_minor": amount, "log_index": log_index}


def test_a_failed_withdrawal() -> None:
    other = "0x" + "03" * 32
    tries = [attempt(TX), attempt(other)]
    assert isinstance(judge_withdrawal(withdrawal("failed"), tries, {TX: None, other: receipt(other)}, 9), Finding)
    assert judge_withdrawal(withdrawal("failed"), tries, {TX: receipt(ok=False), other: None}, 4) == OK   # nonce used
    assert judge_withdrawal(withdrawal("failed"), tries, {TX: receipt(ok=False), other: None}, 3) == PENDING
    assert judge_withdrawal(withdrawal("failed"), tries, {TX: None, other: None}, None) == PENDING
    assert judge_withdrawal(withdrawal("failed"), [], {}, None) == OK   # never signed


def test_a_confirmed_withdrawal() -> None:
    other = "0x" + "03" * 32
    tries = [attempt(TX), attempt(other)]
    assert judge_withdrawal(withdrawal("confirmed"), tries, {TX: receipt(ok=False), other: receipt(other)}, 9) == OK
    assert judge_withdrawal(withdrawal("confirmed"), tries, {TX: receipt(ok=False), other: None}, 9) == PENDING
    found = judge_withdrawal(withdrawal("confirmed"), tries, {TX: receipt(ok=False), other: receipt(other, ok=False)}, 9)
    assert isinstance(found, Finding) and found.freeze_key == "reconcile:withdrawal:c:5" and found.ids == (5,)
    assert isinstance(judge_withdrawal(withdrawal("confirmed"), [], {}, 9), Finding)


def judge(credited: list[dict[str, Any]], found: ReceiptWithLogs | None, tx: TxSummary | None = None) -> Any:
    return judge_deposit_tx(chain="c", tx_hash=TX, credited=credited, receipt=found, tx=tx,
                            contracts={"USDT": TOKEN}, native_symbol="ETH")


def test_token_deposits_each_need_their_own_log_of_the_exact_amount() -> None:
    assert judge([deposit(1, 5)], receipt(logs=(log(5),))) == OK
    assert judge([deposit(1, 5), deposit(2, 5, log_index=1)], receipt(logs=(log(5), log(5, index=1)))) == OK
    twice = judge([deposit(1, 5), deposit(2, 5, log_index=1)], receipt(logs=(log(5),)))
    assert isinstance(twice, Finding) and set(twice.ids) == {1, 2}
    assert isinstance(judge([deposit(1, 5)], receipt(logs=(log(6),))), Finding)
    assert isinstance(judge([deposit(1, 5)], receipt(logs=(log(5, to="0x" + "dd" * 20),))), Finding)
    assert isinstance(judge([deposit(1, 5)], receipt(logs=(log(5, token="0x" + "ee" * 20),))), Finding)
    assert isinstance(judge([deposit(1, 5)], receipt(ok=False, logs=(log(5),))), Finding)
    assert judge([deposit(1, 5)], None) == PENDING
    assert judge([deposit(1, 5, asset="GONE")], receipt()) == UNVERIFIABLE


def test_a_native_deposit_is_the_transactions_value_and_to() -> None:
    tx = TxSummary(tx_hash=TX, from_address="0x" + "cc" * 20, to_address=TO, value_wei=10**18, input="0x", nonce=0,
                   block_number=7, block_hash="0x" + "02" * 32, transaction_index=0)
    assert judge([deposit(1, 10**18, asset="ETH", log_index=-1)], receipt(), tx) == OK
    assert isinstance(judge([deposit(1, 10**17, asset="ETH", log_index=-1)], receipt(), tx), Finding)
    assert judge([deposit(1, 10**18, asset="ETH", log_index=-1)], receipt(), None) == PENDING
