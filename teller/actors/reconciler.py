"""Reconciler: checks the money while Teller runs - the ledger against itself, and against the chains.

One pass (``run_pass``), every ``interval_s`` (at once again while it is behind):

1. The ledger's invariants, incrementally (``LedgerAudit``: the transfers since the last pass against
   the accounts they touch and a rotating page of the others, in one snapshot; the full form first,
   hourly, and to confirm any disagreement). A problem the full form confirms is a finding.
2. Per configured chain, the rows finished since the last pass (``RowCursor``, kept in
   ``sync_cursors``): every ``failed`` withdrawal (refunded) must have no signed transaction that
   succeeded; every ``confirmed`` one must have one that did; every credited deposit's transaction must
   exist, have succeeded and hold a transfer of its own for each row credited from it. Receipts,
   transactions and nonces are asked in JSON-RPC batches. A null receipt is "not known yet": the row
   stays open for the next pass and is counted in ``pending_receipts``. A chain whose node is down keeps
   its rows open; the other chains and the ledger go on.
3. One transaction: every finding's freeze (scope ``all``: no withdrawal is signed while one is active;
   key ``invariants`` for the ledger, ``reconcile:{withdrawal|deposit}:{chain}:{id or tx}`` for the
   chains) and both cursors. Then each finding is logged as an error, ``reconcile.violation``, with the
   ids it concerns (never a key or an address's secret), and kept for /ops/status.

A chain finding stays a violation while its freeze is active (an operator lifts it with a reason); a
ledger finding while the ledger is still wrong. The database or a node failing ends the pass as a
failure (logged; the next pass retries after a backoff); anything else crashes the actor and its
supervisor restarts it, which resumes from the stored cursors and rebuilds the ledger model.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from teller.actors.reconcile_checks import (
    OK,
    PENDING,
    UNVERIFIABLE,
    WITHDRAWAL_SETTLED,
    Finding,
    deposit_waits,
    judge_deposit_tx,
    judge_withdrawal,
)
from teller.chain.receipts import ChainReads
from teller.config import ChainSettings
from teller.errors import ChainUnavailable, TellerError
from teller.runtime import PassLoopActor
from teller.storage.deposits import NATIVE_LOG_INDEX
from teller.storage.freezes import Freezes
from teller.storage.ledger_audit import FULL_INTERVAL_S, LedgerAudit
from teller.storage.reconcile import DEPOSITS_CURSOR, WITHDRAWALS_CURSOR, ReconcileReads, RowCursor
from teller.storage.store import Row, StorageError, Store, utc_now

__all__ = ["Reconciler", "ReconcileStatus", "ChainCheck", "RECONCILE_INTERVAL_S", "FREEZE_KEY_PREFIX"]

RECONCILE_INTERVAL_S = 60.0   # wanted: a config key (teller/config.py is another engineer's, not this one's)
BACKOFF_MAX_S = 60.0
RECONCILER_MAILBOX_MAX = 16
FINDINGS_KEPT_MAX = 100       # violations shown in /ops/status
FREEZE_KEY_PREFIX = "reconcile:"


@dataclass(frozen=True, slots=True)
class ChainCheck:
    settings: ChainSettings
    reads: ChainReads

    @property
    def contracts(self) -> dict[str, str]:
        return {t.symbol: t.contract.lower() for t in self.settings.tokens if t.contract}


@dataclass(slots=True)
class ReconcileStatus:
    """What /ops/status shows; written by the reconciler only."""

    last_run_at: datetime | None = None
    last_ok: bool | None = None
    passes: int = 0
    ledger_problems: tuple[str, ...] = ()
    findings: list[dict[str, Any]] = field(default_factory=list)   # chain findings whose freeze is active
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending_receipts: int = 0
    last_full_at: datetime | None = None
    behind: bool = False
    waiting: dict[str, int] = field(default_factory=dict)          # table -> rows open or missing in its cursor
    chain_errors: dict[str, str] = field(default_factory=dict)     # chain -> error code of its last pass
    last_error: str | None = None

    @property
    def violations(self) -> int:
        return len(self.ledger_problems) + len(self.findings)


@dataclass(slots=True)
class _Tally:
    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pending: int = 0
    behind: bool = False


class Reconciler(PassLoopActor):
    pass_method = "run_pass"
    expected_errors = (TellerError, StorageError)
    mailbox_max = RECONCILER_MAILBOX_MAX

    def __init__(self, *, store: Store, chains: Mapping[str, ChainCheck], status: ReconcileStatus,
                 interval_s: float = RECONCILE_INTERVAL_S, full_interval_s: float = FULL_INTERVAL_S) -> None:
        super().__init__()
        self.store = store
        self.chains = dict(chains)
        self.status = status
        self.interval_s = interval_s
        self.audit = LedgerAudit(store, full_interval_s=full_interval_s)
        self.reads = ReconcileReads(store)
        self.freezes = Freezes(store)
        self._ledger_finding: Finding | None = None

    def delay_after(self, caught_up: bool | None, failures: int) -> float:
        if failures:
            return min(BACKOFF_MAX_S, self.interval_s, 0.5 * 2 ** min(failures, 16))
        return self.interval_s if caught_up else 0.0

    # -- one pass --------------------------------------------------------------------------------------
    async def run_pass(self) -> bool:
        """Check what is new; True when nothing was left for the next pass."""
        try:
            return await self._pass()
        except (TellerError, StorageError) as exc:
            self.status.last_error = type(exc).__name__
            self.log.warning("reconcile.pass_failed", error=type(exc).__name__, message=str(exc)[:200])
            raise

    async def _pass(self) -> bool:
        tally = _Tally()
        audit = await self.audit.run()
        tally.checked["transfers"] += audit.transfers
        tally.checked["accounts"] += audit.accounts
        if audit.mode == "full":
            tally.checked["full_checks"] += 1
            self.status.last_full_at = utc_now()
        if audit.cleared:
            self.log.warning("reconcile.ledger_recheck_cleared", transfers=audit.transfers)
        if audit.mode == "full" and audit.problems:   # owed until a pass commits it, even if this one fails
            self._ledger_finding = Finding("ledger", None, "ledger", f"{len(audit.problems)} ledger problems,"
                                           f" the first: {audit.problems[0]}"[:300])
        if self._ledger_finding is not None:
            tally.findings.append(self._ledger_finding)
        withdrawals = await self.reads.cursor(WITHDRAWALS_CURSOR)
        deposits = await self.reads.cursor(DEPOSITS_CURSOR)
        await self._withdrawals(withdrawals, tally)
        await self._deposits(deposits, tally)
        await self.store.run_atomic([
            self.reads.save_cursor(WITHDRAWALS_CURSOR, withdrawals), self.reads.save_cursor(DEPOSITS_CURSOR, deposits),
            *(Freezes.freeze_write(f.freeze_key, scope="all", chain=f.chain, reason=f.detail) for f in tally.findings),
        ])
        self._ledger_finding = None
        for f in tally.findings:
            self.log.error("reconcile.violation", kind=f.kind, chain=f.chain, subject=f.subject, ids=list(f.ids),
                           detail=f.detail, freeze_key=f.freeze_key)
        self.status.waiting = {"withdrawals": len(withdrawals.waiting()), "deposits": len(deposits.waiting())}
        await self._update_status(audit.problems, tally)
        return audit.caught_up and not tally.behind

    async def _update_status(self, ledger_problems: Sequence[str], tally: _Tally) -> None:
        active = await self.freezes.active()
        status = self.status
        status.findings = [_finding_json(r) for r in active if r["freeze_key"].startswith(FREEZE_KEY_PREFIX)]
        status.findings = status.findings[-FINDINGS_KEPT_MAX:]
        status.ledger_problems = tuple(ledger_problems)
        for name, n in tally.checked.items():
            status.checked[name] += n
        status.pending_receipts, status.behind = tally.pending, tally.behind
        status.last_run_at, status.last_error, status.passes = utc_now(), None, status.passes + 1
        status.last_ok = status.violations == 0

    # -- withdrawals -----------------------------------------------------------------------------------
    async def _withdrawals(self, cursor: RowCursor, tally: _Tally) -> None:
        rows, new_after, more = await self.reads.rows("withdrawals", cursor)
        tally.behind |= more
        still_open = {r["id"] for r in rows if r["status"] not in WITHDRAWAL_SETTLED}
        by_chain: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            if row["status"] in WITHDRAWAL_SETTLED:
                by_chain[row["chain"]].append(row)
        for chain, finished in by_chain.items():
            check = self.chains.get(chain)
            if check is None:   # a chain no longer configured: nothing to ask
                tally.checked["unverifiable"] += len(finished)
                continue
            try:
                verdicts = await self._judge_withdrawals(check, finished)
            except ChainUnavailable as exc:
                self._chain_down(chain, exc)
                still_open |= {w["id"] for w in finished}
                continue
            self.status.chain_errors.pop(chain, None)
            for w, verdict in zip(finished, verdicts):
                self._count(verdict, w["id"], "withdrawals", tally, still_open)
        self._move(cursor, rows, still_open, new_after)

    async def _judge_withdrawals(self, check: ChainCheck, finished: Sequence[Row]) -> list[str | Finding]:
        attempts = await self.reads.attempts([w["id"] for w in finished])
        receipts = await check.reads.receipts([a["tx_hash"] for tries in attempts.values() for a in tries])
        # Where a failed withdrawal's transaction has no receipt: has its nonce been used since?
        senders = {w["from_address"] for w in finished if w["status"] == "failed" and w["from_address"]
                   and any(receipts.get(a["tx_hash"].lower()) is None for a in attempts[w["id"]])}
        mined = await check.reads.mined_counts(sorted(senders)) if senders else {}
        return [judge_withdrawal(w, attempts[w["id"]], receipts, mined.get((w["from_address"] or "").lower()))
                for w in finished]

    # -- deposits --------------------------------------------------------------------------------------
    async def _deposits(self, cursor: RowCursor, tally: _Tally) -> None:
        rows, new_after, more = await self.reads.rows("deposits", cursor)
        tally.behind |= more
        now = utc_now()
        still_open = {r["id"] for r in rows if deposit_waits(r, now)}
        by_chain: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            if row["status"] == "credited":
                by_chain[row["chain"]][row["tx_hash"].lower()].append(row)
        for chain, by_tx in by_chain.items():
            check = self.chains.get(chain)
            if check is None:
                tally.checked["unverifiable"] += sum(map(len, by_tx.values()))
                continue
            try:
                verdicts = await self._judge_deposits(check, sorted(by_tx))
            except ChainUnavailable as exc:
                self._chain_down(chain, exc)
                still_open |= {r["id"] for batch in by_tx.values() for r in batch}
                continue
            self.status.chain_errors.pop(chain, None)
            for tx_hash, verdict in verdicts.items():
                for row in by_tx[tx_hash]:
                    self._count(verdict, row["id"], "deposits", tally, still_open)
        self._move(cursor, rows, still_open, new_after)

    async def _judge_deposits(self, check: ChainCheck, tx_hashes: Sequence[str]) -> dict[str, str | Finding]:
        chain = check.settings.name
        credited: dict[str, list[Row]] = defaultdict(list)
        for row in await self.reads.credited_of(chain, tx_hashes):
            credited[row["tx_hash"].lower()].append(row)
        receipts = await check.reads.receipts(tx_hashes)
        natives = [h for h in tx_hashes if any(int(r["log_index"]) == NATIVE_LOG_INDEX for r in credited[h])]
        txs = await check.reads.transactions(natives) if natives else {}
        return {h: judge_deposit_tx(chain=chain, tx_hash=h, credited=credited[h], receipt=receipts.get(h),
                                    tx=txs.get(h), contracts=check.contracts, native_symbol=check.settings.native.symbol)
                for h in tx_hashes}

    # -- bookkeeping -----------------------------------------------------------------------------------
    @staticmethod
    def _count(verdict: str | Finding, row_id: int, what: str, tally: _Tally, still_open: set[int]) -> None:
        if isinstance(verdict, Finding):
            if verdict not in tally.findings:
                tally.findings.append(verdict)
            tally.checked[what] += 1
        elif verdict == PENDING:
            still_open.add(row_id)
            tally.pending += 1
        else:
            assert verdict in (OK, UNVERIFIABLE), verdict
            tally.checked[what if verdict == OK else "unverifiable"] += 1

    @staticmethod
    def _move(cursor: RowCursor, rows: Sequence[Row], still_open: set[int], new_after: int) -> None:
        cursor.open = (cursor.open - {r["id"] for r in rows}) | still_open
        cursor.advance([r["id"] for r in rows], new_after=new_after, now_s=time.time())

    def _chain_down(self, chain: str, exc: ChainUnavailable) -> None:
        self.status.chain_errors[chain] = exc.code
        self.log.warning("reconcile.chain_unavailable", chain=chain, error=str(exc)[:200])


def _finding_json(freeze: Row) -> dict[str, Any]:
    _, kind, chain, subject = (freeze["freeze_key"].split(":", 3) + ["", "", ""])[:4]
    return {"kind": kind, "chain": chain or None, "id": subject, "detail": freeze["reason"],
            "since": freeze["created_at"], "freeze_id": freeze["id"]}
