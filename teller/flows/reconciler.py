"""The reconciler flow: one ``Reconciler`` in the root's ``reconciler`` slot (started last, stopped
first), and its part of /ops/status: ``reconciler`` (the last pass) and ``freezes`` (every active one).

Always on: the ledger is checked even with no chain configured. ``ctx.overrides``:
``reconcile_interval_s`` (seconds between passes; ``RECONCILE_INTERVAL_S`` until the settings have a key
for it), ``reconcile_reads:<chain>`` (a ``ChainReads`` to use for that chain).
"""

from __future__ import annotations

from typing import Any

from teller.actors.reconciler import RECONCILE_INTERVAL_S, ChainCheck, Reconciler, ReconcileStatus
from teller.chain.receipts import ChainReads
from teller.flows.base import AppContext, Flow
from teller.http.render import rfc3339
from teller.runtime import ChildSpec
from teller.storage.freezes import Freezes
from teller.storage.store import Row

__all__ = ["build", "RECONCILER_SLOT", "status_json"]

RECONCILER_SLOT = "reconciler"


def status_json(status: ReconcileStatus) -> dict[str, Any]:
    ledger = [{"kind": "ledger", "chain": None, "id": "ledger", "detail": problem, "since": None}
              for problem in status.ledger_problems]
    chains = [{**f, "since": rfc3339(f["since"])} for f in status.findings]
    return {
        "last_run_at": rfc3339(status.last_run_at), "last_ok": status.last_ok, "passes": status.passes,
        "violations": ledger + chains,
        "checked": dict(status.checked), "pending_receipts": status.pending_receipts,
        "last_full_check_at": rfc3339(status.last_full_at), "behind": status.behind, "waiting": dict(status.waiting),
        "chain_errors": dict(status.chain_errors), "last_error": status.last_error,
    }


def _freeze_json(row: Row) -> dict[str, Any]:
    return {"id": row["id"], "freeze_key": row["freeze_key"], "scope": row["scope"], "chain": row["chain"],
            "user_id": row["user_id"], "asset": row["asset"], "reason": row["reason"],
            "created_at": rfc3339(row["created_at"])}


def build(ctx: AppContext) -> Flow:
    status = ReconcileStatus()
    owned: list[ChainReads] = []
    checks: dict[str, ChainCheck] = {}
    for chain in ctx.settings.chains:
        reads = ctx.overrides.get(f"reconcile_reads:{chain.name}")
        if reads is None:
            reads = ChainReads.from_settings(chain)
            owned.append(reads)
        checks[chain.name] = ChainCheck(settings=chain, reads=reads)
    interval_s = float(ctx.overrides.get("reconcile_interval_s", RECONCILE_INTERVAL_S))
    spec = ChildSpec(name=RECONCILER_SLOT, factory=lambda: Reconciler(store=ctx.store, chains=checks, status=status,
                                                                        interval_s=interval_s))
    freezes = Freezes(ctx.store)

    async def status_doc() -> dict[str, Any]:
        active = await freezes.active()
        return {"reconciler": status_json(status),
                "freezes": {"active": len(active), "items": [_freeze_json(r) for r in active]}}

    async def close() -> None:
        for reads in owned:
            await reads.close()

    return Flow(name="reconciler", children={RECONCILER_SLOT: (spec,)}, status=status_doc, close=close)
