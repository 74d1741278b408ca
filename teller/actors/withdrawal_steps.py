"""The ledger side of a withdrawal: placing the hold, settling it, refunding it. Every step is keyed.

Postings (asset code ``A`` = ``"{chain}:{symbol}"``, ``W`` = the withdrawal's id):

1. accept:  ``user:{uid}:A -> withdrawal-hold:A``, amount + fee, PENDING, key ``wdh:{uid}:{sha256 of the
   Idempotency-Key}`` (``teller.storage.ledger_keys``: no client key can form a system key), with, in the
   same DB transaction, the freeze check, the daily-limit lock and check, and the withdrawal row's
   insert (a replay runs none of them).
2. confirm: post the hold in full (key ``wd:{W}:post``): the user's debit is final;
   then ``withdrawal-hold:A -> hot:{chain}:A`` the amount (key ``wd:{W}:paid``: what the hot wallet paid out)
   and ``withdrawal-hold:A -> fees:A`` the fee (key ``wd:{W}:fee``: our revenue). The LAST of these
   carries the row's ``confirmed`` update and the ``withdrawal.confirmed`` event, so a crash anywhere in
   between leaves the row unfinished and the next tick replays the steps (each a no-op the second time).
3. refund:  void the hold (key ``wd:{W}:void``) with the row's ``failed`` update and ``withdrawal.failed``.
   Only with proof that the money did not leave: our own transaction reverted on chain, confirmations
   deep, or an operator's decision (``resolve``) on a row that waits for one.

The network fee (gas) is paid by the hot wallet in the native coin and is not a ledger movement here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any

from teller.assets import Asset
from teller.chain.types import Receipt
from teller.errors import IdempotencyConflict
from teller.events.schema import EventType
from teller.money import format_amount
from teller.storage import Event, Store, UniqueViolation, Write, fees_account, hold_account, hot_account, user_account
from teller.storage.store import Row, utc_now
from teller.storage.freezes import Freezes
from teller.storage.ledger_keys import withdrawal_hold_key, withdrawal_step_key
from teller.storage.withdrawals import DailyLimit, Withdrawals

__all__ = ["WithdrawalRequest", "place_command", "settle", "refund", "event_payload", "hold_key_for",
           "payment_problem"]


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    """A validated request (HTTP edge): every field checked, the amount in minor units."""

    user_id: int
    idempotency_key: str
    asset: Asset
    to_address: str  # checksummed
    amount_minor: int
    daily_limit_minor: int | None

    @property
    def fingerprint(self) -> str:
        return f"{self.asset.chain}|{self.asset.symbol}|{self.to_address.lower()}|{self.amount_minor}"


def hold_key_for(user_id: int, idempotency_key: str) -> str:
    return withdrawal_hold_key(user_id, idempotency_key)


def place_command(request: WithdrawalRequest) -> Any:
    """The WalletActor command: check and hold, or return the withdrawal this key already made.

    Answers ``(row, created)``. The freeze check, the daily-limit check and the hold are one DB
    transaction, with a per-(user, asset) row lock: one step across processes, on both backends. The
    ledger's balance check and the unique ``(user_id, idempotency_key)`` hold across processes too.
    """

    async def command(store: Store, user_id: int) -> tuple[Row, bool]:
        assert user_id == request.user_id
        repo = Withdrawals(store)
        existing = await repo.by_key(user_id, request.idempotency_key)
        if existing is not None:
            return _replayed(existing, request), False
        asset = request.asset
        assert asset.chain is not None
        checks = [Freezes.hold_check(chain=asset.chain, user_id=user_id, asset=asset.code)]
        if request.daily_limit_minor is not None:
            day_start = datetime.combine(utc_now().date(), time(0), tzinfo=timezone.utc)
            checks += Withdrawals.daily_limit_writes(DailyLimit(
                user_id=user_id, chain=asset.chain, asset=asset.symbol, limit_minor=request.daily_limit_minor,
                amount_minor=request.amount_minor, since=day_start))
        hold_key = hold_key_for(user_id, request.idempotency_key)
        try:
            hold = await store.ledger.transfer(
                debit=user_account(user_id, asset.code), credit=hold_account(asset.code), asset=asset.code,
                amount=request.amount_minor + asset.withdrawal_fee_minor, key=hold_key, pending=True,
                writes=[*checks, Withdrawals.insert(
                    user_id=user_id, chain=asset.chain, asset=asset.symbol, to_address=request.to_address,
                    amount_minor=request.amount_minor, fee_minor=asset.withdrawal_fee_minor,
                    idempotency_key=request.idempotency_key, fingerprint=request.fingerprint, hold_key=hold_key)],
            )
        except (UniqueViolation, IdempotencyConflict):
            # another process took the key between our read and our write: its row answers
            existing = await repo.by_key(user_id, request.idempotency_key)
            if existing is None:
                raise
            return _replayed(existing, request), False
        row = await repo.by_key(user_id, request.idempotency_key)
        assert row is not None, "the hold committed without its withdrawal row"
        if hold.replayed:  # another process made this withdrawal with this key first
            return _replayed(row, request), False
        return row, True

    return command


def _replayed(row: Row, request: WithdrawalRequest) -> Row:
    if row["request_fingerprint"] != request.fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was used for another withdrawal")
    return row


def event_payload(row: Row, asset: Asset, **extra: Any) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]), "withdrawal_id": str(row["id"]), "asset": asset.symbol,
        "chain": row["chain"], "amount": format_amount(row["amount_minor"], asset.decimals),
        "fee": format_amount(row["fee_minor"], asset.decimals), "to": row["to_address"], **extra,
    }


def _no_crash(step: str) -> None:
    pass


async def settle(store: Store, row: Row, asset: Asset, *, tx_hash: str, extra_writes: Sequence[Write] = (),
                 crash_point: Callable[[str], None] = _no_crash) -> None:
    """Post the hold and split it to the hot wallet's and the fees' accounts (postings 2)."""
    wid, code = row["id"], asset.code
    assert asset.chain is not None
    await store.ledger.post(pending_key=row["hold_key"], key=withdrawal_step_key(wid, "post"))
    crash_point("settle_posted")
    finish = [Withdrawals.finish(withdrawal_id=wid, status="confirmed"), *extra_writes]
    events = [Event(EventType.WITHDRAWAL_CONFIRMED.value, event_payload(row, asset, tx_hash=tx_hash))]
    fee_minor = row["fee_minor"]
    await store.ledger.transfer(
        debit=hold_account(code), credit=hot_account(asset.chain, code), asset=code, amount=row["amount_minor"],
        key=withdrawal_step_key(wid, "paid"), writes=() if fee_minor else finish, outbox=() if fee_minor else events)
    crash_point("settle_paid")
    if fee_minor:
        await store.ledger.transfer(debit=hold_account(code), credit=fees_account(code), asset=code,
                                    amount=fee_minor, key=withdrawal_step_key(wid, "fee"), writes=finish, outbox=events)


async def refund(store: Store, row: Row, asset: Asset, *, reason: str, extra_writes: Sequence[Write] = (),
                 crash_point: Callable[[str], None] = _no_crash) -> None:
    """Void the hold: the user has amount + fee back (postings 3). ``extra_writes`` go first, in the
    same transaction (an operator's guard and the freeze it lifts)."""
    crash_point("refund_start")
    await store.ledger.void(
        pending_key=row["hold_key"], key=withdrawal_step_key(row["id"], "void"),
        writes=[*extra_writes, Withdrawals.finish(withdrawal_id=row["id"], status="failed", failure_reason=reason)],
        outbox=[Event(EventType.WITHDRAWAL_FAILED.value, event_payload(row, asset, reason=reason))])
    crash_point("refund_committed")


def payment_problem(row: Row, asset: Asset, receipt: Receipt, *, hot_address: str) -> str | None:
    """Why a mined, status-1 receipt does NOT show this withdrawal paid (None: it does). A token may answer
    ``false`` instead of reverting: then the receipt has status 1 and no Transfer log, and nothing was sent."""
    if receipt.from_address.lower() != hot_address.lower():
        return f"the receipt of {receipt.tx_hash} is from {receipt.from_address}, not the hot wallet"
    recipient = row["to_address"].lower()
    if asset.contract is None:
        if (receipt.to_address or "").lower() != recipient:
            return f"the transaction {receipt.tx_hash} went to {receipt.to_address}, not the recipient"
        return None
    token = asset.contract.lower()
    for log in receipt.transfer_logs:
        if (log.token == token and log.from_address == hot_address.lower() and log.to_address == recipient
                and log.amount_minor == row["amount_minor"]):
            return None
    return (f"the transaction {receipt.tx_hash} mined with status 1 but its receipt has no Transfer of the amount"
            " to the recipient")
