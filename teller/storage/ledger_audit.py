"""``LedgerAudit``: the ledger's invariants, checked while Teller runs, a little at a time.

``check_invariants`` (invariants.py) recomputes every account from every transfer on each call: about
1.6 s at 100k transfers on either backend (bench/reconcile.py), growing with the ledger. Its reads are
also separate statements, so a transfer committed between two of them reads as a broken account. This
form keeps what the transfers say in memory (``_Model``: four running sums per account and the open
holds) and, each ``run``, reads in ONE snapshot the transfers committed since the last run, the
accounts they touched, and a rotating page of the other accounts (``ACCOUNTS_PER_PASS``), and compares.

A snapshot is one ``run_atomic`` of reads (on PostgreSQL opened REPEATABLE READ, READ ONLY; on SQLite
the unit is one call on the store's own thread). Ids are not commit-ordered on PostgreSQL: an id below
the highest one read may commit later, and a sequence value may never commit at all (a rolled-back
insert, an ``ON CONFLICT`` replay). Such missing ids near the top are re-read each run until they appear
or ``GAP_WAIT_S`` has passed.

Nothing found by the incremental form alone is reported: any disagreement (a new or changed one)
triggers the full form, which rebuilds the model from every transfer (pages, not one long lock) and
compares every account (pages of snapshots). Only what the full form finds is a problem; an account
already found broken with the same difference is not re-checked every run. The full form also runs
first and every ``FULL_INTERVAL_S``, which covers what the incremental one cannot see (a transfer row
edited in place). Checked, as ``check_invariants`` does: each account's four sums equal its transfers;
a transfer's accounts are of its asset; no user account is below zero; a hold is resolved once, after
it was placed, never for more than it held, and its status says how it was resolved. Per asset the sums
are then zero, since each transfer adds the same amount to one account's debits and another's credits.

Memory: about 400 bytes per account (``ACCOUNTS_MODELLED_MAX`` bounds it; past it, ``run`` refuses).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from teller.storage.store import Row, StorageError, Write

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["LedgerAudit", "AuditResult", "ACCOUNTS_PER_PASS", "TRANSFERS_PER_PASS_MAX", "FULL_INTERVAL_S",
           "GAP_WAIT_S"]

ACCOUNTS_PER_PASS = 2_000        # untouched accounts compared per incremental run, in rotation
ACCOUNTS_PAGE_FULL = 5_000       # accounts per snapshot when the full form compares them all
TRANSFERS_PER_PASS_MAX = 20_000  # new transfers folded per snapshot; more: fold, compare on the next one
PAGE_ROWS = 2_000                # transfers per page while the full form rebuilds the model (~20 ms of folding)
FULL_INTERVAL_S = 3_600.0        # the full form at least this often
FULL_STEPS_MAX = 10_000          # snapshots one full form may take (a flood of new transfers)
GAP_WINDOW_IDS = 10_000          # missing ids this close below the highest are waited for
GAP_WAIT_S = 120.0               # ... for this long (a ledger transaction has no other I/O inside)
GAPS_MAX = 1_000
ACCOUNTS_MODELLED_MAX = 2_000_000
PROBLEMS_MAX = 100

_T_COLUMNS = "id, key, kind, debit, credit, asset, amount_minor, pending_key, status"
_A_COLUMNS = "name, asset, user_id, posted_debits_minor, posted_credits_minor, pending_debits_minor," \
             " pending_credits_minor"
_SUMS = ("posted_debits_minor", "posted_credits_minor", "pending_debits_minor", "pending_credits_minor")
_RESOLVED_STATUS = {"post": "posted", "void": "voided"}


@dataclass(frozen=True, slots=True)
class AuditResult:
    mode: str                  # "full" | "incremental"
    problems: tuple[str, ...]  # as the full form found them (never from the incremental form alone)
    transfers: int             # transfers folded by this run
    accounts: int              # accounts compared by this run
    caught_up: bool            # False: more transfers were waiting than one snapshot folds
    cleared: int = 0           # incremental disagreements the full form did not confirm


@dataclass(slots=True)
class _Model:
    """What the transfers folded so far say. ``accounts``: name -> [posted debits, posted credits,
    pending debits, pending credits, asset]. A hold counts as pending until its resolution is folded
    (its ``status`` column is checked apart); a resolution folded before its hold (the hold's id was a
    gap) waits in ``early`` for it."""

    accounts: dict[str, list[Any]] = field(default_factory=dict)
    open_holds: dict[str, tuple[str, str, int]] = field(default_factory=dict)   # key -> debit, credit, amount
    early: dict[str, Row] = field(default_factory=dict)
    top_id: int = 0
    gaps: dict[int, float] = field(default_factory=dict)   # missing id -> when first missed (monotonic)

    def fold(self, t: Row, problems: list[str]) -> None:
        kind, amount = t["kind"], t["amount_minor"]
        debit, credit = self._account(t["debit"], t, problems), self._account(t["credit"], t, problems)
        if kind == "single":
            debit[0] += amount
            credit[1] += amount
        elif kind == "pending":
            debit[2] += amount
            credit[3] += amount
            self.open_holds[t["key"]] = (t["debit"], t["credit"], amount)
            resolution = self.early.pop(t["key"], None)
            if resolution is not None:
                self.fold(resolution, problems)
        else:
            hold = self.open_holds.pop(t["pending_key"], None)
            if hold is None:
                self.early[t["pending_key"]] = t
                return
            held_debit, held_credit, held = hold
            self.accounts[held_debit][2] -= held
            self.accounts[held_credit][3] -= held
            if kind == "post":
                if amount > held:
                    problems.append(f"hold {t['pending_key']}: posted {amount}, more than the {held} held")
                debit[0] += amount
                credit[1] += amount

    def _account(self, name: str, t: Row, problems: list[str]) -> list[Any]:
        entry = self.accounts.get(name)
        if entry is None:
            entry = self.accounts[name] = [0, 0, 0, 0, t["asset"]]
        elif entry[4] != t["asset"]:
            problems.append(f"transfer {t['key']}: account {name} is of {entry[4]}, not {t['asset']}")
        return entry

    def note_ids(self, ids: Iterable[int], *, low: int, high: int, now_s: float) -> None:
        """Ids read in ``(low, high]`` (and any gap ids): the unread ones near the top become gaps."""
        seen = set(ids)
        for gap in seen & self.gaps.keys():
            del self.gaps[gap]
        for missing in range(max(low, high - GAP_WINDOW_IDS) + 1, high + 1):
            if missing not in seen:
                self.gaps.setdefault(missing, now_s)
        self.top_id = max(self.top_id, high)
        for gap, since_s in list(self.gaps.items()):
            if now_s - since_s > GAP_WAIT_S:
                del self.gaps[gap]
        while len(self.gaps) > GAPS_MAX:
            del self.gaps[min(self.gaps)]

    def verdict(self, row: Row) -> tuple[Any, ...] | None:
        """None when the stored account agrees with its transfers, else what differs (hashable)."""
        entry = self.accounts.get(row["name"])
        expected = tuple(entry[:4]) if entry is not None else (0, 0, 0, 0)
        stored = tuple(row[f] for f in _SUMS)
        below_zero = row["user_id"] is not None and stored[1] - stored[0] - stored[2] < 0
        wrong_asset = entry is not None and entry[4] != row["asset"]
        if stored == expected and not below_zero and not wrong_asset:
            return None
        return tuple(s - e for s, e in zip(stored, expected)), below_zero, wrong_asset, expected, stored


def _identity(verdict: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    """What a verdict says is wrong, without the sums (they move with every new transfer)."""
    return None if verdict is None else verdict[:3]


def _describe(name: str, verdict: tuple[Any, ...]) -> list[str]:
    offset, below_zero, wrong_asset, expected, stored = verdict
    found = []
    if any(offset):
        found.append(f"account {name}: stored {list(stored)} but its transfers give {list(expected)}")
    if below_zero:
        found.append(f"user account {name} is below zero")
    if wrong_asset:
        found.append(f"account {name}: its transfers name another asset than the account")
    return found


@dataclass(slots=True)
class _Step:
    """What one snapshot found."""

    folded: int = 0
    more: bool = False      # more new transfers than one snapshot folds: nothing was compared
    verdicts: dict[str, tuple[Any, ...] | None] = field(default_factory=dict)   # compared account -> verdict
    problems: list[str] = field(default_factory=list)   # not about one account's sums (holds, assets)
    wrapped: bool = False   # the page of accounts reached the last one


class LedgerAudit:
    def __init__(self, store: Store, *, accounts_per_pass: int = ACCOUNTS_PER_PASS,
                 full_interval_s: float = FULL_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._accounts_per_pass = accounts_per_pass
        self._full_interval_s = full_interval_s
        self._clock = clock
        self._model: _Model | None = None
        self._page_after = ""                          # the rotating page of accounts starts after this name
        self._known: dict[str, tuple[Any, ...]] = {}   # accounts the last full form found broken, as found
        self._standing: tuple[str, ...] = ()           # what the last full form found
        self._full_at_s: float | None = None

    @property
    def problems(self) -> tuple[str, ...]:
        return self._standing

    async def run(self) -> AuditResult:
        """One incremental run, or the full form when it is due or the incremental one disagrees."""
        model = self._model
        if model is None or self._full_at_s is None or self._clock() - self._full_at_s >= self._full_interval_s:
            return await self.full()
        step = await self._step(model, page_rows=self._accounts_per_pass)
        changed = any(p not in self._standing for p in step.problems) or any(
            _identity(self._known.get(name)) != _identity(v) for name, v in step.verdicts.items())
        if not changed:
            return AuditResult("incremental", self._standing, step.folded, len(step.verdicts),
                               caught_up=not step.more)
        full = await self.full()
        return AuditResult("full", full.problems, step.folded + full.transfers, len(step.verdicts) + full.accounts,
                           caught_up=full.caught_up, cleared=0 if full.problems else 1)

    async def full(self) -> AuditResult:
        """Rebuild the model from every transfer, then compare every account."""
        model, problems, folded = await self._rebuild()
        verdicts: dict[str, tuple[Any, ...] | None] = {}
        self._page_after = ""
        for _ in range(FULL_STEPS_MAX):
            step = await self._step(model, page_rows=ACCOUNTS_PAGE_FULL)
            folded += step.folded
            problems += step.problems
            verdicts.update(step.verdicts)
            if step.wrapped and not step.more:
                break
        else:
            raise StorageError(f"the ledger check could not catch up with new transfers in {FULL_STEPS_MAX} reads")
        problems += await self._hold_status_problems()
        broken = {name: v for name, v in verdicts.items() if v is not None}
        for name in sorted(broken):
            problems += _describe(name, broken[name])
        self._model, self._known, self._full_at_s = model, broken, self._clock()
        self._standing = tuple(list(dict.fromkeys(problems))[:PROBLEMS_MAX])
        return AuditResult("full", self._standing, folded, len(verdicts), caught_up=True)

    async def _rebuild(self) -> tuple[_Model, list[str], int]:
        """Fold every transfer up to the highest id, in pages (other work goes on between them)."""
        model, problems = _Model(), []
        row = await self._store.fetch_one("SELECT max(id) AS top FROM transfers")
        top = int((row or {}).get("top") or 0)
        after, folded = 0, 0
        while after < top:
            rows = await self._store.fetch_all(
                f"SELECT {_T_COLUMNS} FROM transfers WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                after, top, PAGE_ROWS)
            if not rows:
                break
            for t in rows:
                model.fold(t, problems)
            model.note_ids((r["id"] for r in rows), low=max(after, top - GAP_WINDOW_IDS), high=rows[-1]["id"],
                           now_s=self._clock())
            after, folded = rows[-1]["id"], folded + len(rows)
        model.note_ids((), low=after, high=top, now_s=self._clock())
        if len(model.accounts) > ACCOUNTS_MODELLED_MAX:
            raise StorageError(f"the ledger has more than {ACCOUNTS_MODELLED_MAX} accounts to model in memory")
        return model, problems, folded

    async def _hold_status_problems(self) -> list[str]:
        """Holds whose status disagrees with their resolution, or says resolved without one. Each is one
        statement, so it sees a hold and its resolution (one transaction) together."""
        wrong = await self._store.fetch_all(
            "SELECT h.key, h.status, r.kind FROM transfers h JOIN transfers r ON r.pending_key = h.key"
            " WHERE h.kind = 'pending' AND h.status <> CASE r.kind WHEN 'post' THEN 'posted' ELSE 'voided' END"
            " ORDER BY h.id LIMIT ?", PROBLEMS_MAX)
        unresolved = await self._store.fetch_all(
            "SELECT h.key, h.status FROM transfers h WHERE h.kind = 'pending' AND h.status <> 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_key = h.key) ORDER BY h.id LIMIT ?",
            PROBLEMS_MAX)
        return ([f"hold {r['key']}: status {r['status']} but resolved by {r['kind']}" for r in wrong]
                + [f"hold {r['key']}: status {r['status']} without a resolution" for r in unresolved])

    async def _step(self, model: _Model, *, page_rows: int) -> _Step:
        """Fold what committed since the last snapshot; unless more is waiting, compare the accounts it
        touched and the next page of accounts, and the statuses of the holds it resolved."""
        new, touched, page, statuses = await self._snapshot(model.top_id, sorted(model.gaps), page_rows)
        step = _Step(more=len(new) > TRANSFERS_PER_PASS_MAX)
        new = new[:TRANSFERS_PER_PASS_MAX]
        step.folded = len(new)
        low = model.top_id
        for t in new:
            model.fold(t, step.problems)
        above = [t["id"] for t in new if t["id"] > low]
        model.note_ids((t["id"] for t in new), low=low, high=max(above, default=low), now_s=self._clock())
        if step.more:
            return step
        status_of = {r["key"]: r["status"] for r in statuses}
        for t in new:
            if t["kind"] == "pending" and t["key"] in model.open_holds and t["status"] != "pending":
                step.problems.append(f"hold {t['key']}: status {t['status']} without a resolution")
            if t["kind"] in _RESOLVED_STATUS and status_of.get(t["pending_key"]) != _RESOLVED_STATUS[t["kind"]]:
                step.problems.append(f"hold {t['pending_key']}: status {status_of.get(t['pending_key'])}"
                                     f" but resolved by {t['kind']}")
        step.problems += [f"hold {key}: resolved by {r['key']} but never placed" for key, r in model.early.items()]
        for row in (*touched, *page):
            step.verdicts[row["name"]] = model.verdict(row)
        step.wrapped = len(page) < page_rows
        self._page_after = "" if step.wrapped else page[-1]["name"]
        return step

    async def _snapshot(self, top: int, gaps: Sequence[int], page_rows: int) -> list[list[Row]]:
        """In one snapshot: the transfers after ``top`` or in ``gaps`` (one more than a step folds, to
        tell there are more), the accounts they touch, a page of accounts, the holds they resolve."""
        gap_sql = f" OR id IN ({', '.join('?' for _ in gaps)})" if gaps else ""
        new_sql = f"SELECT {{}} FROM transfers WHERE id > ?{gap_sql} ORDER BY id LIMIT ?"
        new_params = (top, *gaps, TRANSFERS_PER_PASS_MAX + 1)
        return await snapshot(self._store, [
            (new_sql.format(_T_COLUMNS), new_params),
            (f"SELECT {_A_COLUMNS} FROM accounts WHERE name IN (SELECT debit FROM ({new_sql.format('debit')}) d"
             f" UNION SELECT credit FROM ({new_sql.format('credit')}) c)", (*new_params, *new_params)),
            (f"SELECT {_A_COLUMNS} FROM accounts WHERE name > ? ORDER BY name LIMIT ?", (self._page_after, page_rows)),
            (f"SELECT key, status FROM transfers WHERE key IN (SELECT pending_key FROM"
             f" ({new_sql.format('pending_key')}) r WHERE pending_key IS NOT NULL)", new_params),
        ])


async def snapshot(store: Store, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
    """Run read-only ``queries`` in one transaction that sees one state of the database; their rows.
    (On SQLite the unit takes the write lock while it runs: keep it short.)"""
    results: list[list[Row]] = [[] for _ in queries]
    writes = [Write(sql, tuple(params), check=results[i].extend) for i, (sql, params) in enumerate(queries)]
    if store.backend == "postgresql":   # read committed would give each statement its own snapshot
        writes.insert(0, Write("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    await store.run_atomic(writes)
    return results
