"""A watcher that dies mid-scan or mid-credit credits nothing twice and misses nothing.

In process: the watcher raises at a chosen step (its supervisor restarts it from the checkpoint).
Out of process: the real app in a subprocess SIGKILLs itself at a chosen step; a fresh app finishes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from teller.storage.invariants import check_invariants
from tests.deposits.helpers import (
    CHAIN,
    CONFIRMATIONS,
    chain_table,
    checkpoint_of,
    deposit_rows,
    deposit_settings,
    running,
    transfers_for,
    wait_for,
)
from tests.fixtures.chain import TEST_MNEMONIC
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN

ROOT = Path(__file__).resolve().parents[2]
USERS = 4
KILL_WAIT_S = 60.0


async def _all_credited(store: Any, count: int) -> bool:
    rows = await deposit_rows(store)
    return len(rows) == count and all(r["status"] == "credited" for r in rows)


def _fund(devnet: Any, addresses: list[str]) -> int:
    """Two deposits per address (native + token) over a few blocks; returns how many."""
    dev = devnet.dev
    for i, address in enumerate(addresses):
        dev.send_native(to=address, amount_wei=(i + 1) * 10**15, wait=False)
        dev.send_token(devnet.token, to=address, amount_minor=(i + 1) * 1_000_000, wait=False)
        dev.mine(1)
    dev.mine(CONFIRMATIONS + 1)
    return 2 * len(addresses)


class CrashOnce:
    """Raises at each listed step the first time the watcher reaches it."""

    def __init__(self, steps: set[str]) -> None:
        self.pending = set(steps)
        self.crashed: list[str] = []

    def __call__(self, chain: str, step: str) -> None:
        if step in self.pending and step != "credit_committed":
            self.pending.discard(step)
            self.crashed.append(step)
            raise RuntimeError(f"injected crash at {step}")


@pytest.mark.parametrize("steps", [{"scanned", "committed"}, {"crediting"}])
async def test_a_watcher_crashed_mid_pass_restarts_from_its_checkpoint(store, devnet, steps) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    hook = CrashOnce(set())
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store, deposit_crash_hook=hook) as app:
        addresses = []
        for n in range(USERS):
            _, headers = await app.sign_in(3000 + n)
            addresses.append(await app.address(headers))
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        hook.pending = set(steps)  # armed only now: the deposits' pass is the one that dies
        count = await asyncio.to_thread(_fund, devnet, addresses)
        await wait_for(lambda: _all_credited(store, count), what="every deposit credited")
        assert sorted(hook.crashed) == sorted(steps)
        node = _find(app.teller.tree.status()["tree"], CHAIN)
        assert node["restarts"] >= len(steps)
        assert len(await transfers_for(store)) == count
    assert await check_invariants(store) == []


def _find(node: dict[str, Any], name: str) -> dict[str, Any]:
    if node["name"] == name and node["kind"] == "actor":
        return node
    for child in node.get("children", []):
        found = _find(child, name)
        if found:
            return found
    return {}


def _raw_settings(devnet: Any, store_url: str) -> dict[str, Any]:
    return {
        "auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": OPS_TOKEN},
        "database": {"url": store_url},
        "chains": [chain_table(rpc_url=devnet.url, token=devnet.token)],
        "signer": {"mnemonic": TEST_MNEMONIC},
    }


# One step only: a subprocess start costs ~10 s here (the app's imports); the in-process tests cover the
# others. credit_committed is the sharpest: some credits durable, the rest not, the range committed.
@pytest.mark.parametrize("step", ["credit_committed"])
async def test_a_sigkilled_teller_credits_nothing_twice_and_misses_nothing(store, store_url, devnet, step) -> None:
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:  # users, addresses and a checkpoint; then stopped
        addresses = []
        for n in range(USERS):
            _, headers = await app.sign_in(3100 + n)
            addresses.append(await app.address(headers))
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
    count = await asyncio.to_thread(_fund, devnet, addresses)
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.crash_runner",
                             json.dumps(_raw_settings(devnet, store_url)), "deposit_crash_hook", step],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        returncode = await asyncio.to_thread(proc.wait, KILL_WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert returncode == -9, "the app should have killed itself at the step"
    if step == "credit_committed":
        assert 1 <= len(await transfers_for(store)) <= count
    async with running(settings, store):
        await wait_for(lambda: _all_credited(store, count), what="every deposit credited after the restart")
    assert len(await transfers_for(store)) == count
    assert len({t["key"] for t in await transfers_for(store)}) == count
    assert await check_invariants(store) == []
