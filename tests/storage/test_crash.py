"""SIGKILL a writer mid-stream of group-committed transfers; nothing acknowledged is lost, nothing half applied."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from teller.storage import open_store

WRITER = Path(__file__).with_name("crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 400
ROUNDS = 2
READ_TIMEOUT_S = 60


async def _run_and_kill(url: str, run: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(WRITER), url, run, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    acked: set[str] = set()
    assert proc.stdout is not None
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = await asyncio.wait_for(proc.stdout.readline(), READ_TIMEOUT_S)
            assert line, (await proc.stderr.read()).decode()[-2000:]
            acked.add(line.decode().split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    return acked


async def test_killed_writer_loses_no_acknowledged_transfer(store_url: str) -> None:
    acked: set[str] = set()
    for round_ in range(ROUNDS):
        acked |= await _run_and_kill(store_url, f"r{round_}")
    store = await open_store(store_url)
    try:
        keys = {r["key"] for r in await store.fetch_all("SELECT key FROM transfers")}
        assert acked <= keys
        events = [json.loads(r["payload"])["key"] for r in await store.fetch_all("SELECT payload FROM outbox")]
        marks = {r["name"] for r in await store.fetch_all("SELECT name FROM sync_cursors")}
        assert marks == keys  # every committed transfer has its write, and no write lacks its transfer
        assert sorted(events) == sorted(keys)  # exactly one event per committed transfer
        assert await store.ledger.check_invariants() == []
    finally:
        await store.close()
