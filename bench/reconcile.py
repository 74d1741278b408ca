"""Reconciler benchmark: what one pass of the ledger check costs on a ledger of N transfers, per backend.

Figures (medians of REPEATS; the machine is noisy, read the ratios):
  full         LedgerAudit.full(): rebuild the model from every transfer, compare every account
  incremental  LedgerAudit.run() after NEW transfers were committed since the last run
  idle         LedgerAudit.run() with nothing new (the page of accounts only)
  slow form    check_invariants(): the test-time check, for reference
against a baseline measured in the same run: a bare ``SELECT count(*) FROM transfers`` and a read of
every account row. Target: an incremental pass costs at most INCREMENTAL_TARGET of the full form.

The ledger: N credits to USERS users (wei amounts, past 64 bits), a tenth of them holds posted or voided.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from teller.storage import open_store  # noqa: E402
from teller.storage.invariants import check_invariants  # noqa: E402
from teller.storage.ledger import TransferOrder  # noqa: E402
from teller.storage.ledger_audit import LedgerAudit  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
N = 100_000
USERS = 10_000
NEW = 1_000
REPEATS = 5
INCREMENTAL_TARGET = 0.05
ASSET = "c:ETH"
CHAIN = f"chain:c:{ASSET}"
HOLD = f"withdrawal-hold:{ASSET}"


async def fill(store: Any, n: int, tag: str) -> None:
    orders = []
    for i in range(n):
        user = f"user:{i % USERS}:{ASSET}"
        if i % 10 == 9:   # a hold on the user credited 9 transfers before
            orders.append(TransferOrder(debit=f"user:{(i - 9) % USERS}:{ASSET}", credit=HOLD, asset=ASSET, amount=10**15, key=f"{tag}-h{i}",
                                        pending=True))
        else:
            orders.append(TransferOrder(debit=CHAIN, credit=user, asset=ASSET, amount=10**19 + i, key=f"{tag}-{i}"))
    for start in range(0, n, 1024):
        outcomes = await store.ledger.transfer_many(orders[start:start + 1024])
        failed = [o for o in outcomes if isinstance(o, Exception)]
        assert not failed, failed[0]
    holds = [o.key for o in orders if o.pending]
    for i, key in enumerate(holds):
        if i % 2:
            await store.ledger.post(pending_key=key, key=f"{key}:post", amount=10**14)
        else:
            await store.ledger.void(pending_key=key, key=f"{key}:void")


async def median_s(run: Callable[[], Awaitable[Any]], *, before: Callable[[], Awaitable[Any]] | None = None,
                   repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            await before()
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def measure(url: str) -> dict[str, float]:
    store = await open_store(url)
    try:
        await fill(store, N, "seed")
        audit = LedgerAudit(store)
        assert (await audit.full()).problems == ()
        rounds = iter(range(10**6))

        async def new_transfers() -> None:
            await fill(store, NEW, f"r{next(rounds)}")

        result = {
            "count": await median_s(lambda: store.fetch_one("SELECT count(*) AS n FROM transfers")),
            "accounts": await median_s(lambda: store.fetch_all("SELECT * FROM accounts")),
            "full": await median_s(audit.full, repeats=3),
            "incremental": await median_s(audit.run, before=new_transfers),
            "idle": await median_s(audit.run),
            "slow": await median_s(lambda: check_invariants(store), repeats=3),
        }
        assert audit.problems == ()
        return result
    finally:
        await store.close()


def report(backend: str, r: dict[str, float]) -> bool:
    ms = {k: v * 1000 for k, v in r.items()}
    print(f"{backend}: count(*) {ms['count']:.1f} ms, all accounts {ms['accounts']:.1f} ms")
    print(f"  full {ms['full']:.0f} ms ({r['full'] / r['count']:.0f}x count(*)), incremental after {NEW} new"
          f" {ms['incremental']:.1f} ms ({r['incremental'] / r['count']:.1f}x count(*)), idle {ms['idle']:.1f} ms"
          f" ({r['idle'] / r['count']:.1f}x count(*)); check_invariants {ms['slow']:.0f} ms")
    ratio = r["incremental"] / r["full"]
    ok = ratio <= INCREMENTAL_TARGET
    print(f"  incremental / full {ratio:.3f}  target <= {INCREMENTAL_TARGET}  {'PASS' if ok else 'MISS'}")
    return ok


async def main() -> int:
    print(f"ledger of {N} transfers (+ holds' resolutions), {USERS} users; medians of {REPEATS} (full: 3)")
    with tempfile.TemporaryDirectory() as tmp:
        lite = await measure(f"sqlite:///{tmp}/bench.db")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        pg = await measure(f"{PG_DSN}?schema={schema}")
    finally:
        conn = await asyncpg.connect(PG_DSN)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    ok = report("sqlite", lite) & report("postgresql", pg)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
