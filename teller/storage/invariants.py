"""``check_invariants``: the ledger audits itself from its transfers, portably, in Python.

Checked: each account's four running sums equal what its transfers say; per asset, posted and
pending postings each sum to zero over all accounts; no user account is below zero; every hold is
resolved at most once, its status agrees with its resolution, and a post never exceeds its hold;
each transfer's asset is its accounts' asset. Amounts are summed in Python because SQLite holds
them as text (and they may pass 64 bits). Reads in pages of ``PAGE_ROWS``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["check_invariants"]

PAGE_ROWS = 5000
_FIELDS = ("posted_debits_minor", "posted_credits_minor", "pending_debits_minor", "pending_credits_minor")


async def check_invariants(store: Store) -> list[str]:
    accounts = {r["name"]: r for r in await store.fetch_all("SELECT * FROM accounts")}
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    holds: dict[str, dict[str, Any]] = {}
    resolutions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    problems: list[str] = []
    after = 0
    while True:
        rows = await store.fetch_all("SELECT id, key, kind, debit, credit, asset, amount_minor, pending_key, status"
                                     " FROM transfers WHERE id > ? ORDER BY id LIMIT ?", after, PAGE_ROWS)
        if not rows:
            break
        after = rows[-1]["id"]
        for t in rows:
            _apply(t, sums, holds, resolutions, accounts, problems)
    for name, row in accounts.items():
        expected = sums.get(name, [0, 0, 0, 0])
        actual = [row[f] for f in _FIELDS]
        if actual != expected:
            problems.append(f"account {name}: stored {actual} but its transfers give {expected}")
        if row["user_id"] is not None and row["posted_credits_minor"] - row["posted_debits_minor"] \
                - row["pending_debits_minor"] < 0:
            problems.append(f"user account {name} is below zero")
    for asset, (posted, pending) in _per_asset(accounts).items():
        if posted:
            problems.append(f"asset {asset}: posted balances sum to {posted}, not 0")
        if pending:
            problems.append(f"asset {asset}: pending balances sum to {pending}, not 0")
    problems.extend(_hold_problems(holds, resolutions))
    return problems


def _apply(t: dict[str, Any], sums: dict[str, list[int]], holds: dict[str, dict[str, Any]],
           resolutions: dict[str, list[dict[str, Any]]], accounts: dict[str, Any], problems: list[str]) -> None:
    amount, debit, credit = t["amount_minor"], sums[t["debit"]], sums[t["credit"]]
    for name in (t["debit"], t["credit"]):
        if name not in accounts:
            problems.append(f"transfer {t['key']}: account {name} does not exist")
        elif accounts[name]["asset"] != t["asset"]:
            problems.append(f"transfer {t['key']}: account {name} is not of {t['asset']}")
    if t["kind"] in ("single", "post"):
        debit[0] += amount
        credit[1] += amount
    if t["kind"] == "pending":
        holds[t["key"]] = t
        if t["status"] == "pending":
            debit[2] += amount
            credit[3] += amount
    if t["kind"] in ("post", "void"):
        resolutions[t["pending_key"]].append(t)


def _per_asset(accounts: dict[str, Any]) -> dict[str, tuple[int, int]]:
    posted: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    for row in accounts.values():
        posted[row["asset"]] += row["posted_credits_minor"] - row["posted_debits_minor"]
        pending[row["asset"]] += row["pending_credits_minor"] - row["pending_debits_minor"]
    return {a: (posted[a], pending[a]) for a in set(posted) | set(pending)}


def _hold_problems(holds: dict[str, dict[str, Any]], resolutions: dict[str, list[dict[str, Any]]]) -> list[str]:
    problems = []
    for key, resolved in resolutions.items():
        hold = holds.get(key)
        if hold is None:
            problems.append(f"hold {key}: resolved but never placed")
            continue
        if len(resolved) > 1:
            problems.append(f"hold {key}: resolved {len(resolved)} times")
        first = resolved[0]
        expected = "posted" if first["kind"] == "post" else "voided"
        if hold["status"] != expected:
            problems.append(f"hold {key}: status {hold['status']} but resolved by {first['kind']}")
        if first["amount_minor"] > hold["amount_minor"]:
            problems.append(f"hold {key}: posted more than held")
    for key, hold in holds.items():
        if hold["status"] != "pending" and key not in resolutions:
            problems.append(f"hold {key}: status {hold['status']} without a resolution")
    return problems
