"""The reconciler's judgements, pure: does a finished withdrawal, or a transaction's credited deposits,
agree with what the chain says?

Each judge answers ``OK``, ``PENDING`` (the node does not know enough yet: ask again next pass; a null
receipt is never a finding by itself) or a ``Finding``.

- A ``failed`` withdrawal was refunded: none of its signed transactions may have succeeded on chain.
  It is settled once every transaction without a receipt has a nonce the hot wallet has used since
  (another transaction took it: this one can never be mined).
- A ``confirmed`` withdrawal was paid: one of its transactions must have a successful receipt.
- A transaction's credited deposits: its receipt exists and succeeded, and each credited row is
  matched by its own transfer on chain - a Transfer log of the asset's contract to that address for
  exactly that amount, or for the native coin the transaction's own value and ``to``. So two rows
  credited for one log (a reorg moved it to another log index, and it was credited again) is a finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from teller.chain.receipts import ReceiptWithLogs
from teller.chain.types import TxSummary
from teller.storage.deposits import NATIVE_LOG_INDEX
from teller.storage.store import Row

__all__ = ["OK", "PENDING", "UNVERIFIABLE", "Finding", "WITHDRAWAL_SETTLED", "deposit_waits",
           "judge_withdrawal", "judge_deposit_tx", "LEDGER_FREEZE_KEY"]

OK, PENDING, UNVERIFIABLE = "ok", "pending", "unverifiable"
WITHDRAWAL_SETTLED = ("confirmed", "failed")
DEPOSIT_WAITING = ("pending", "orphaned", "out_of_chain")   # may (again) be credited; any other status is final
ORPHANED_WAIT_S = 86_400.0   # an orphaned deposit not seen again for this long is let go (it holds a slot)
LEDGER_FREEZE_KEY = "invariants"
DETAIL_LEN_MAX = 300


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str            # "ledger" | "withdrawal" | "deposit"
    chain: str | None
    subject: str         # a withdrawal id, a transaction hash, "ledger"
    detail: str
    ids: tuple[int, ...] = ()   # the rows concerned (withdrawal or deposit ids)

    @property
    def freeze_key(self) -> str:
        if self.kind == "ledger":
            return LEDGER_FREEZE_KEY
        return f"reconcile:{self.kind}:{self.chain}:{self.subject}"


def deposit_waits(row: Row, now: datetime) -> bool:
    """May this deposit still be credited (so the reconciler keeps it open)?"""
    if row["status"] == "orphaned":
        return (now - row["updated_at"]).total_seconds() < ORPHANED_WAIT_S
    return row["status"] in DEPOSIT_WAITING


def judge_withdrawal(withdrawal: Row, attempts: Sequence[Row], receipts: Mapping[str, ReceiptWithLogs | None],
                     mined_count: int | None) -> str | Finding:
    """``receipts`` by lowercase hash for every attempt; ``mined_count``: transactions mined from the
    withdrawal's ``from_address`` (None when unknown)."""
    wid, chain = int(withdrawal["id"]), withdrawal["chain"]
    succeeded = [(a, r) for a in attempts if (r := receipts.get(a["tx_hash"].lower())) is not None
                 and r.receipt.succeeded]
    unknown = [a for a in attempts if receipts.get(a["tx_hash"].lower()) is None]
    if withdrawal["status"] == "failed":
        if succeeded:
            attempt, found = succeeded[0]
            return Finding("withdrawal", chain, str(wid), _cut(
                f"withdrawal {wid} failed and was refunded, but its transaction {attempt['tx_hash']} succeeded"
                f" in block {found.receipt.block_number}"), (wid,))
        if any(mined_count is None or int(a["nonce"]) >= mined_count for a in unknown):
            return PENDING
        return OK
    assert withdrawal["status"] == "confirmed", withdrawal["status"]
    if succeeded:
        return OK
    if unknown:
        return PENDING
    return Finding("withdrawal", chain, str(wid), _cut(
        f"withdrawal {wid} is confirmed, but none of its {len(attempts)} transactions succeeded on chain"), (wid,))


def judge_deposit_tx(*, chain: str, tx_hash: str, credited: Sequence[Row], receipt: ReceiptWithLogs | None,
                     tx: TxSummary | None, contracts: Mapping[str, str], native_symbol: str) -> str | Finding:
    """``credited``: every credited deposit row of ``tx_hash`` on ``chain``; ``contracts``: token symbol ->
    lowercase contract; ``tx`` is needed only when a native deposit is among them."""
    if any(r["asset"] != native_symbol and r["asset"] not in contracts for r in credited):
        return UNVERIFIABLE   # an asset no longer configured: nothing to compare it with
    native = any(int(r["log_index"]) == NATIVE_LOG_INDEX for r in credited)
    if receipt is None or (native and tx is None):
        return PENDING
    ids = tuple(int(r["id"]) for r in credited)
    if not receipt.receipt.succeeded:
        return Finding("deposit", chain, tx_hash, _cut(
            f"transaction {tx_hash} reverted, but {len(credited)} deposits of it were credited"), ids)
    symbol_of = {contract: symbol for symbol, contract in contracts.items()}
    on_chain: Counter[tuple[str, str, int]] = Counter(
        (symbol_of[log.token], log.to_address, log.amount_minor) for log in receipt.transfers if log.token in symbol_of)
    if tx is not None and tx.to_address is not None and tx.value_wei > 0:
        on_chain[(native_symbol, tx.to_address, tx.value_wei)] += 1
    wanted: Counter[tuple[str, str, int]] = Counter(
        (r["asset"], r["address"].lower(), int(r["amount_minor"])) for r in credited)
    missing = wanted - on_chain
    if not missing:
        return OK
    (asset, address, amount), _ = next(iter(missing.items()))
    short = tuple(int(r["id"]) for r in credited if (r["asset"], r["address"].lower(), int(r["amount_minor"])) in missing)
    return Finding("deposit", chain, tx_hash, _cut(
        f"transaction {tx_hash}: {wanted[(asset, address, amount)]} deposits of {amount} {asset} to {address} were"
        f" credited, but it holds {on_chain[(asset, address, amount)]} such transfers (deposit ids"
        f" {', '.join(map(str, short[:10]))})"), short)


def _cut(text: str) -> str:
    return text[:DETAIL_LEN_MAX]
