"""SIGKILL at each dangerous step of a withdrawal: one transaction on chain, the hold posted once.

The real app runs in a subprocess on a SQLite file; it kills itself (SIGKILL) at an injected step:
after the signed transaction is persisted but before it is broadcast, after the broadcast but before
it is recorded, and after the receipt is seen but before the hold is settled. Each restart resumes from
what is on disk.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from teller.actors.withdrawal_steps import WithdrawalRequest, place_command
from teller.assets import AssetRegistry
from teller.config import settings_from_mapping
from teller.storage import Store, chain_account, open_store, user_account
from tests.fixtures.chain import TEST_MNEMONIC, DevNet
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN
from tests.withdrawals.helpers import ETH, RECIPIENT, chain_table

HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ROOT = Path(__file__).resolve().parents[2]
CRASH_WAIT_S = 60.0
AMOUNT_WEI = 3 * 10**17


def _raw(db_url: str, devnet: DevNet) -> dict[str, Any]:
    return {
        "auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": OPS_TOKEN},
        "database": {"url": db_url},
        "signer": {"mnemonic": TEST_MNEMONIC},
        "chains": [chain_table(rpc_url=devnet.url, token=devnet.token)],
    }


def _run(raw: dict[str, Any], step: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.fixtures.crash_runner", json.dumps(raw),
                             "withdrawal_crash_hook", step],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _nonce(devnet: DevNet, tag: str = "latest") -> int:
    return int(devnet.dev.rpc("eth_getTransactionCount", HOT, tag), 16)


async def _row(url: str) -> dict[str, Any]:
    store = await open_store(url)
    try:
        row = await store.fetch_one("SELECT * FROM withdrawals")
        assert row is not None
        row["attempts"] = await store.fetch_all("SELECT * FROM withdrawal_attempts ORDER BY id")
        return row
    finally:
        await store.close()


async def _killed_at(raw: dict[str, Any], step: str) -> None:
    proc = _run(raw, step)
    code = await asyncio.to_thread(proc.wait, CRASH_WAIT_S)
    assert code == -signal.SIGKILL, f"expected the process to die at {step}, exit code {code}"


async def test_sigkill_at_every_step_sends_once_and_posts_once(tmp_path: Path, devnet: DevNet) -> None:
    url = f"sqlite:///{tmp_path / 'teller.db'}"
    raw = _raw(url, devnet)
    settings = settings_from_mapping(raw, environ={})
    asset = AssetRegistry.from_settings(settings).on_chain("devnet", "ETH")
    store: Store = await open_store(url)
    try:
        user = await store.users.get_or_create(telegram_id=5)
        await store.ledger.transfer(debit=chain_account("devnet", ETH), credit=user_account(user.id, ETH),
                                    asset=ETH, amount=10**18, key="credit")
        request = WithdrawalRequest(user_id=user.id, idempotency_key="crash", asset=asset, to_address=RECIPIENT,
                                    amount_minor=AMOUNT_WEI, daily_limit_minor=None)
        await place_command(request)(store, user.id)
    finally:
        await store.close()
    nonce_before, paid_before = _nonce(devnet), devnet.dev.balance_wei(RECIPIENT)

    await _killed_at(raw, "after_sign")
    row = await _row(url)
    assert row["status"] == "signed" and len(row["attempts"]) == 1
    assert _nonce(devnet, "pending") == nonce_before  # persisted, never sent

    await _killed_at(raw, "after_broadcast")
    row = await _row(url)
    assert row["status"] == "signed"  # the kill came before the broadcast was recorded
    assert _nonce(devnet) == nonce_before + 1  # ...but it is on chain (automine)

    await _killed_at(raw, "after_receipt")
    row = await _row(url)
    assert row["status"] == "broadcast" and row["attempts"][0]["status"] == "mined"

    proc = _run(raw, "none")
    try:
        deadline = asyncio.get_running_loop().time() + CRASH_WAIT_S
        while (await _row(url))["status"] != "confirmed":
            assert asyncio.get_running_loop().time() < deadline, "the withdrawal never confirmed"
            assert proc.poll() is None, "the runner died"
            await asyncio.to_thread(devnet.dev.mine, 1)
            await asyncio.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()

    assert _nonce(devnet) == nonce_before + 1  # exactly one transaction
    assert devnet.dev.balance_wei(RECIPIENT) - paid_before == AMOUNT_WEI
    store = await open_store(url)
    try:
        posts = await store.fetch_all("SELECT * FROM transfers WHERE kind = 'post'")
        assert len(posts) == 1
        assert (await store.ledger.balances(user.id))[0].available_minor == 10**18 - AMOUNT_WEI - 5 * 10**14
        events = [r["type"] for r in await store.fetch_all("SELECT type FROM outbox ORDER BY id")]
        assert events.count("withdrawal.broadcast") == 1 and events.count("withdrawal.confirmed") == 1
        assert not await store.ledger.check_invariants()
    finally:
        await store.close()
