"""Ledger benchmark: group commit on SQLite and PostgreSQL against baselines measured in the same run.

Figures (medians of REPEATS runs; the machine is noisy, read the ratios):
  A  SQLite ledger, 8 concurrent submitters      vs raw sqlite3, the same transfers batched BATCH_MAX per transaction
  B  PostgreSQL ledger, 8 concurrent submitters  (absolute transfers/s)
  C  PostgreSQL ledger, 8 submitters             vs the same with one transfer per transaction (batch_max=1)
  D  idempotent replays                          vs new transfers (each backend)

A replay of a transfer the same ledger committed is answered from its memory; for information the
bench also replays through a second Ledger on the same store, which must ask the database (as
another process would).

A submitter is one task feeding the ledger, like a watcher crediting a block's deposits: it hands
the ledger WINDOW transfers at a time with one ``transfer_many`` call and awaits their outcomes
(each transfer still succeeds or fails on its own). For information, the same with one
``transfer`` call per transfer (WINDOW of them in flight through ``asyncio.gather``: a task per
transfer, which on this GIL-bound loop costs about as much as the database work itself), and
with WINDOW=1 (each submitter awaits every transfer before the next).
Each transfer: bank:irt -> user:{i % 1000}:IRT, unique key, one outbox event.

Equal work in A: the raw baseline commits with the store's durability (``synchronous=FULL``: one
WAL fsync per COMMIT) and as often as the ledger does (the ledger's batches fill to BATCH_MAX
here: 24 commits for N_SQLITE). With NORMAL the baseline skipped the fsync the ledger pays; with
100 per transaction it made 60 commits to the ledger's 24. Either way A compared different work.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402

from teller.storage import Event, open_store  # noqa: E402
from teller.storage.ledger import BATCH_MAX, Ledger, TransferOrder  # noqa: E402
from teller.storage.open import PG_LEDGER_WRITERS  # noqa: E402
from teller.storage.sqlite import SYNCHRONOUS  # noqa: E402

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
SUBMITTERS = 8
WINDOW = 32
REPEATS = 5
N_SQLITE = 6_000
N_PG = 8_000
RAW_BATCH = BATCH_MAX   # one COMMIT (one fsync) per ledger-sized batch: see the docstring


def _transfers(tag: str, n: int) -> list[tuple[str, str]]:
    return [(f"user:{i % 1000}:IRT", f"{tag}-{i}") for i in range(n)]


async def _drive(ledger: Ledger, items: list[tuple[str, str]], *, window: int, bulk: bool = True) -> float:
    async def submitter(part: list[tuple[str, str]]) -> None:
        for i in range(0, len(part), window):
            if bulk:
                outcomes = await ledger.transfer_many([
                    TransferOrder(debit="bank:irt", credit=user, asset="IRT", amount=5, key=key,
                                  outbox=[Event("irt.credited", {"key": key})])
                    for user, key in part[i:i + window]])
                failed = [o for o in outcomes if isinstance(o, Exception)]
                if failed:
                    raise failed[0]
            else:
                await asyncio.gather(*(ledger.transfer(debit="bank:irt", credit=user, asset="IRT", amount=5, key=key,
                                                       outbox=[Event("irt.credited", {"key": key})])
                                       for user, key in part[i:i + window]))

    start = time.perf_counter()
    await asyncio.gather(*(submitter(items[s::SUBMITTERS]) for s in range(SUBMITTERS)))
    return len(items) / (time.perf_counter() - start)


def _raw_sqlite(path: str, items: list[tuple[str, str]]) -> float:
    """Plain sqlite3, 5 statements per transfer, RAW_BATCH per transaction, same schema, same durability."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")  # the store's: each COMMIT fsyncs the WAL, as the ledger's
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("INSERT OR IGNORE INTO accounts (name, asset) VALUES ('bank:irt', 'IRT')")
    for user in {u for u, _ in items}:
        conn.execute("INSERT OR IGNORE INTO accounts (name, asset, user_id) VALUES (?, 'IRT', 1)", (user,))
    start = time.perf_counter()
    for b in range(0, len(items), RAW_BATCH):
        conn.execute("BEGIN IMMEDIATE")
        for user, key in items[b:b + RAW_BATCH]:
            row = conn.execute("SELECT posted_debits_minor FROM accounts WHERE name = 'bank:irt'").fetchone()
            conn.execute("UPDATE accounts SET posted_debits_minor = ? WHERE name = 'bank:irt'", (str(int(row[0]) + 5),))
            conn.execute("UPDATE accounts SET posted_credits_minor = posted_credits_minor + 5 WHERE name = ?", (user,))
            conn.execute("INSERT INTO transfers (key, kind, debit, credit, asset, amount_minor, status, fingerprint,"
                         " created_at) VALUES (?, 'single', 'bank:irt', ?, 'IRT', '5', 'posted', 'x', 'now')", (key, user))
            conn.execute("INSERT INTO outbox (type, payload, created_at) VALUES ('irt.credited', ?, 'now')", (key,))
        conn.execute("COMMIT")
    rate = len(items) / (time.perf_counter() - start)
    conn.close()
    return rate


async def _sqlite_figures(tmp: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"raw": [], "ledger": [], "ledger_each": [], "ledger_w1": [], "replay": [],
                                   "replay_db": []}
    for r in range(REPEATS):
        raw_path = tmp / f"raw{r}.db"
        store = await open_store(f"sqlite:///{raw_path}")  # the same schema for the raw baseline
        await store.close()
        out["raw"].append(await asyncio.to_thread(_raw_sqlite, str(raw_path), _transfers("raw", N_SQLITE)))
        store = await open_store(f"sqlite:///{tmp / f'ledger{r}.db'}")
        items = _transfers("new", N_SQLITE)
        out["ledger"].append(await _drive(store.ledger, items, window=WINDOW))
        out["replay"].append(await _drive(store.ledger, items, window=WINDOW))
        cold = Ledger(store)
        out["replay_db"].append(await _drive(cold, items, window=WINDOW))
        await cold.close()
        out["ledger_each"].append(await _drive(store.ledger, _transfers("each", N_SQLITE), window=WINDOW, bulk=False))
        out["ledger_w1"].append(await _drive(store.ledger, _transfers("w1", N_SQLITE // 6), window=1, bulk=False))
        await store.close()
    return out


async def _pg_figures() -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"ledger": [], "single": [], "ledger_each": [], "ledger_w1": [], "replay": [],
                                   "replay_db": []}
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    store = await open_store(f"{PG_DSN}?schema={schema}")
    try:
        one_per_tx = Ledger(store, batch_max=1, writers=2)
        for r in range(REPEATS):
            items = _transfers(f"new{r}", N_PG)
            out["ledger"].append(await _drive(store.ledger, items, window=WINDOW))
            out["replay"].append(await _drive(store.ledger, items, window=WINDOW))
            cold = Ledger(store, writers=PG_LEDGER_WRITERS)
            out["replay_db"].append(await _drive(cold, items, window=WINDOW))
            await cold.close()
            out["single"].append(await _drive(one_per_tx, _transfers(f"one{r}", N_PG // 4), window=WINDOW))
            out["ledger_each"].append(await _drive(store.ledger, _transfers(f"each{r}", N_PG // 2), window=WINDOW,
                                                   bulk=False))
            out["ledger_w1"].append(await _drive(store.ledger, _transfers(f"w1{r}", N_PG // 8), window=1, bulk=False))
        await one_per_tx.close()
        assert not await store.ledger.check_invariants()
    finally:
        await store.close()
        conn = await asyncpg.connect(PG_DSN)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    return out


def _line(name: str, value: float, target: float, unit: str = "x") -> bool:
    ok = value >= target
    print(f"{name:<62} {value:>10.2f}{unit:<3} target >= {target:g}{unit:<3} {'PASS' if ok else 'MISS'}")
    return ok


async def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        lite = {k: statistics.median(v) for k, v in (await _sqlite_figures(Path(tmp))).items()}
    pg = {k: statistics.median(v) for k, v in (await _pg_figures()).items()}
    print(f"medians of {REPEATS}; {SUBMITTERS} submitters, window {WINDOW}")
    print(f"  sqlite raw batched {lite['raw']:.0f}/s, ledger {lite['ledger']:.0f}/s, replays {lite['replay']:.0f}/s")
    print(f"  info: sqlite one transfer() per transfer {lite['ledger_each']:.0f}/s"
          f" ({lite['ledger_each'] / lite['raw']:.2f}x raw), window=1 {lite['ledger_w1']:.0f}/s"
          f" ({lite['ledger_w1'] / lite['raw']:.2f}x raw)")
    print(f"  postgresql ledger {pg['ledger']:.0f}/s, one-per-transaction {pg['single']:.0f}/s, replays {pg['replay']:.0f}/s")
    print(f"  info: replays asked of the database (a second Ledger): sqlite {lite['replay_db']:.0f}/s"
          f" ({lite['replay_db'] / lite['ledger']:.2f}x new), postgresql {pg['replay_db']:.0f}/s"
          f" ({pg['replay_db'] / pg['ledger']:.2f}x new)")
    print(f"  info: postgresql one transfer() per transfer {pg['ledger_each']:.0f}/s, window=1 {pg['ledger_w1']:.0f}/s")
    results = [
        _line("A sqlite ledger / raw sqlite3 batched", lite["ledger"] / lite["raw"], 0.8),
        _line("B postgresql ledger transfers/s", pg["ledger"], 8000, "/s"),
        _line("C postgresql ledger / one transfer per transaction", pg["ledger"] / pg["single"], 3.0),
        _line("D sqlite replays / new transfers", lite["replay"] / lite["ledger"], 2.0),
        _line("D postgresql replays / new transfers", pg["replay"] / pg["ledger"], 2.0),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
