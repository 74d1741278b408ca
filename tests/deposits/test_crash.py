"""A watcher that dies mid-scan or mid-credit credits nothing twice and misses nothing.

In process: the watcher raises at a chosen step (its supervisor restarts it from the checkpoint).
Out of process: the real app in another process SIGKILLs itself at a chosen step (every step of a
pass, and the rewind of a reorg), on both backends; a fresh app finishes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account

from teller.storage.invariants import check_invariants
from tests.deposits.helpers import (
    CHAIN,
    CONFIRMATIONS,
    chain_table,
    checkpoint_of,
    deposit_rows,
    deposit_settings,
    events_of,
    running,
    transfers_for,
    wait_for,
)
from tests.fixtures.chain import TEST_MNEMONIC
from tests.fixtures.crash_runner import killed_at
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN

USERS = 4
SENDER_INDEX = 7  # an anvil-prefunded account of the test mnemonic, far from the users' indexes


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


async def _balances(store: Any, user_id: int) -> dict[str, tuple[int, int]]:
    return {b.asset: (b.available_minor, b.held_minor) for b in await store.ledger.balances(user_id)}


async def _users_and_addresses(settings: Any, store: Any, telegram_id_first: int, count: int) -> list[tuple[int, str]]:
    """Users with deposit addresses and the watcher's first checkpoint; the app is stopped after."""
    async with running(settings, store) as app:
        users = []
        for n in range(count):
            user_id, headers = await app.sign_in(telegram_id_first + n)
            users.append((user_id, await app.address(headers)))
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
    return users


# SIGKILL of a real process (tests.fixtures.crash_runner) at each step of a pass, each from a clean
# state, on both backends: scanned (blocks and logs read, nothing committed), committed (deposits
# pending, checkpoint moved), crediting (about to credit), credit_committed (some credits durable, the
# rest not). A fresh app then finishes: each deposit credited exactly once.
@pytest.mark.parametrize("step", ["scanned", "committed", "crediting", "credit_committed"])
async def test_a_sigkilled_teller_credits_nothing_twice_and_misses_nothing(store, store_url, devnet, tmp_path,
                                                                          step) -> None:
    devnet.dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    users = await _users_and_addresses(settings, store, 3100, USERS)
    checkpoint_before = await checkpoint_of(store)
    count = await asyncio.to_thread(_fund, devnet, [address for _, address in users])

    await killed_at(_raw_settings(devnet, store_url), hook="deposit_crash_hook", step=step,
                    log_path=tmp_path / "killed.log")
    rows = await deposit_rows(store)
    if step == "scanned":  # the range was read, not committed: nothing seen, the checkpoint where it was
        assert rows == [] and await checkpoint_of(store) == checkpoint_before
    if step in ("committed", "crediting"):
        assert rows and {r["status"] for r in rows} == {"pending"}
        assert await transfers_for(store) == []
    if step == "crediting":
        assert len(rows) == count
    if step == "credit_committed":
        assert 1 <= len(await transfers_for(store)) <= count

    async with running(settings, store):
        await wait_for(lambda: _all_credited(store, count), what="every deposit credited after the restart")
    transfers = await transfers_for(store)
    assert len(transfers) == count and len({t["key"] for t in transfers}) == count
    for i, (user_id, _) in enumerate(users):
        assert await _balances(store, user_id) == {f"{CHAIN}:ETH": ((i + 1) * 10**15, 0),
                                                   f"{CHAIN}:USDT": ((i + 1) * 1_000_000, 0)}
    assert len(await events_of(store, "deposit.seen")) == count
    assert len(await events_of(store, "deposit.credited")) == count
    assert await check_invariants(store) == []


def _signed_native(devnet: Any, *, to: str, amount_wei: int) -> str:
    """A raw transfer from an anvil-prefunded account, to send again after a reorg (the same hash)."""
    account = devnet.wallet.account(SENDER_INDEX)
    nonce = int(devnet.dev.rpc("eth_getTransactionCount", account.address, "latest"), 16)
    tx = {"type": 2, "chainId": devnet.chain_id, "nonce": nonce, "to": to, "value": amount_wei, "gas": 21_000,
          "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9}
    return "0x" + bytes(Account.sign_transaction(tx, account.key).raw_transaction).hex()


async def _statuses(store: Any) -> dict[str, list[str]]:
    """Each asset's deposit rows' statuses (a re-included transfer may keep its row or get a new one)."""
    statuses: dict[str, list[str]] = {}
    for row in await deposit_rows(store):
        statuses.setdefault(row["asset"], []).append(row["status"])
    return {asset: sorted(found) for asset, found in statuses.items()}


async def test_a_teller_sigkilled_while_rewinding_a_reorg_credits_the_surviving_deposit_once(
        store, store_url, devnet, tmp_path) -> None:
    """Two pending deposits; the chain reorganises under the checkpoint: the native transfer comes back
    a block later, the token transfer never does. Killed after finding the common ancestor, before
    the rewind commits; a fresh app rewinds, orphans the token deposit and credits the native one once."""
    dev = devnet.dev
    dev.set_automine(False)
    settings = deposit_settings(chain_table(rpc_url=devnet.url, token=devnet.token))
    async with running(settings, store) as app:
        user_id, headers = await app.sign_in(3300)
        address = await app.address(headers)
        await wait_for(lambda: checkpoint_of(store), what="the watcher's first checkpoint")
        raw = _signed_native(devnet, to=address, amount_wei=2 * 10**18)
        snapshot = dev.snapshot()
        tx_hash = dev.rpc("eth_sendRawTransaction", raw)
        dev.send_token(devnet.token, to=address, amount_minor=7_000_000, wait=False)
        await asyncio.to_thread(dev.mine, 1)
        await wait_for(lambda: _rows_pending(store, 2), what="two pending deposits")
    dev.revert(snapshot)
    await asyncio.to_thread(dev.mine, 1)  # another block at the deposits' height, without them
    assert dev.rpc("eth_sendRawTransaction", raw) == tx_hash  # the native transfer only comes back
    await asyncio.to_thread(dev.mine, CONFIRMATIONS + 1)

    await killed_at(_raw_settings(devnet, store_url), hook="deposit_crash_hook", step="rewinding",
                    log_path=tmp_path / "killed.log")
    assert await _statuses(store) == {"ETH": ["pending"], "USDT": ["pending"]}  # the rewind never committed
    assert await transfers_for(store) == []

    async def settled() -> bool:
        statuses = await _statuses(store)
        return (statuses.get("ETH", []).count("credited") == 1 and set(statuses["ETH"]) <= {"credited", "orphaned"}
                and statuses["USDT"] == ["orphaned"])

    async with running(settings, store):
        await wait_for(settled, what="the native deposit credited, the token deposit orphaned")
        await asyncio.to_thread(dev.mine, CONFIRMATIONS)
        await wait_for(lambda: _at_tip(store, dev), what="the watcher at the tip")
    assert len(await transfers_for(store)) == 1
    assert await _balances(store, user_id) == {f"{CHAIN}:ETH": (2 * 10**18, 0)}
    assert len(await events_of(store, "deposit.credited")) == 1
    assert await check_invariants(store) == []


async def _rows_pending(store: Any, count: int) -> bool:
    return len([r for r in await deposit_rows(store) if r["status"] == "pending"]) == count


async def _at_tip(store: Any, dev: Any) -> bool:
    checkpoint = await checkpoint_of(store)
    return checkpoint is not None and checkpoint >= dev.block_number()
