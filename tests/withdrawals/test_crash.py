"""SIGKILL at every step of a withdrawal, on both backends: one transaction per nonce, each posting once.

The real app runs in another process on the test's database (a SQLite file or a PostgreSQL schema)
and kills itself (SIGKILL) the first time the withdrawal actor reports the step under test; a fresh
process then resumes from what is on disk. Steps: a batch signed and persisted but not sent
(``after_sign``), sent but not recorded (``after_broadcast``), the receipt recorded but the hold not
settled (``after_receipt``), between settle's three postings (``settle_posted``, ``settle_paid``),
around a refund of a reverted transaction (``refund_start``, ``refund_committed``), and a replacement
signed and persisted but not sent (``after_replace_persist``). Each is killed from a clean state.

What a test checks is what an operator could see: the rows' statuses, the chain's nonces and
receipts, the recipient's balance, the ledger's transfers (by key) and balances, the outbox events
and ``check_invariants``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from teller.actors.withdrawal_steps import WithdrawalRequest, place_command
from teller.assets import AssetRegistry
from teller.config import settings_from_mapping
from teller.storage import Store, chain_account, fees_account, hold_account, hot_account, user_account
from teller.storage.ledger_keys import withdrawal_step_key
from tests.fixtures.chain import TEST_MNEMONIC, DevNet
from tests.fixtures.crash_runner import NO_STEP, killed_at, start_app, stop_app
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN
from tests.withdrawals.helpers import CHAIN, ETH, RECIPIENT, USDT, chain_table

HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # TEST_MNEMONIC index 0, the hot wallet (prefunded)
HOOK = "withdrawal_crash_hook"
FINISH_WAIT_S = 60.0
POLL_S = 0.05
CREDIT_WEI = 10**18
AMOUNT_WEI = 3 * 10**17
REPLACE_AFTER_S = 0.3  # the first transaction counts as stuck this soon (it can never mine: no mining)
BATCH = 3


@dataclass(frozen=True)
class Placed:
    """A withdrawal accepted before the app under test starts, with what its user had."""

    withdrawal_id: int
    user_id: int
    asset: str           # the ledger's asset code, e.g. devnet:ETH
    amount_minor: int
    fee_minor: int
    credit_minor: int    # the user's balance before the withdrawal


@dataclass(frozen=True)
class ChainBefore:
    nonce: int
    block_number: int
    recipient_wei: int
    recipient_token_minor: int


def _raw(url: str, devnet: DevNet, **chain_extra: Any) -> dict[str, Any]:
    return {
        "auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": OPS_TOKEN},
        "database": {"url": url},
        "signer": {"mnemonic": TEST_MNEMONIC},
        "chains": [chain_table(rpc_url=devnet.url, token=devnet.token, **chain_extra)],
    }


async def _place(store: Store, raw: dict[str, Any], *, telegram_id: int, asset: str, amount_minor: int,
                 credit_minor: int) -> Placed:
    registry = AssetRegistry.from_settings(settings_from_mapping(raw, environ={}))
    on_chain = registry.on_chain(CHAIN, asset.split(":", 1)[1])
    user = await store.users.get_or_create(telegram_id=telegram_id)
    await store.ledger.transfer(debit=chain_account(CHAIN, asset), credit=user_account(user.id, asset), asset=asset,
                                amount=credit_minor, key=f"credit:{telegram_id}:{asset}")
    request = WithdrawalRequest(user_id=user.id, idempotency_key=f"crash-{telegram_id}", asset=on_chain,
                                to_address=RECIPIENT, amount_minor=amount_minor, daily_limit_minor=None)
    row, created = await place_command(request)(store, user.id)
    assert created
    return Placed(withdrawal_id=int(row["id"]), user_id=user.id, asset=asset, amount_minor=amount_minor,
                  fee_minor=int(row["fee_minor"]), credit_minor=credit_minor)


def _nonce(devnet: DevNet, tag: str = "latest") -> int:
    return int(devnet.dev.rpc("eth_getTransactionCount", HOT, tag), 16)


def _chain_before(devnet: DevNet) -> ChainBefore:
    dev = devnet.dev
    return ChainBefore(nonce=_nonce(devnet), block_number=dev.block_number(), recipient_wei=dev.balance_wei(RECIPIENT),
                       recipient_token_minor=dev.token_balance(devnet.token, RECIPIENT))


async def _row(store: Store, withdrawal_id: int) -> dict[str, Any]:
    row = await store.fetch_one("SELECT * FROM withdrawals WHERE id = ?", withdrawal_id)
    assert row is not None
    row["attempts"] = await store.fetch_all(
        "SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ? ORDER BY id", withdrawal_id)
    return row


async def _keys(store: Store, placed: Placed) -> set[str]:
    """Which of the withdrawal's settlement and refund postings exist."""
    keys = [withdrawal_step_key(placed.withdrawal_id, step) for step in ("post", "paid", "fee", "void")]
    rows = await store.fetch_all(f"SELECT key FROM transfers WHERE key IN ({', '.join('?' * len(keys))})", *keys)
    return {r["key"].rsplit(":", 1)[1] for r in rows}


async def _events(store: Store, event_type: str, placed: Placed) -> int:
    rows = await store.fetch_all("SELECT payload FROM outbox WHERE type = ?", event_type)
    return sum(json.loads(r["payload"])["withdrawal_id"] == str(placed.withdrawal_id) for r in rows)


async def _balance(store: Store, placed: Placed) -> tuple[int, int]:
    for b in await store.ledger.balances(placed.user_id):
        if b.asset == placed.asset:
            return b.available_minor, b.held_minor
    return 0, 0


async def _run_until_final(raw: dict[str, Any], store: Store, placed: list[Placed], *, log_path: Path,
                           devnet: DevNet, mine_when: Callable[[], Awaitable[bool]] | None = None) -> None:
    """A fresh app (no crash) until every withdrawal is confirmed or failed; then it is killed. A block
    is mined between polls (once ``mine_when`` says so, if given)."""
    process = start_app(raw, hook=HOOK, step=NO_STEP, log_path=log_path)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FINISH_WAIT_S
    mining = mine_when is None
    try:
        while True:
            rows = [await _row(store, p.withdrawal_id) for p in placed]
            if all(r["status"] in ("confirmed", "failed") for r in rows):
                return
            states = [(r["id"], r["status"], r.get("incident_reason"), r.get("last_error")) for r in rows]
            assert loop.time() < deadline, f"not finished after the restart: {states}; log: {log_path}"
            assert process.poll() is None, f"the restarted app died ({process.exitcode}); log: {log_path}"
            if not mining and mine_when is not None:
                mining = await mine_when()
            if mining:
                await asyncio.to_thread(devnet.dev.mine, 1)
            await asyncio.sleep(POLL_S)
    finally:
        stop_app(process)


def _sums(*, posted_debits: int = 0, posted_credits: int = 0) -> dict[str, int]:
    return {"posted_debits_minor": posted_debits, "posted_credits_minor": posted_credits,
            "pending_debits_minor": 0, "pending_credits_minor": 0}


def _mined_attempts(devnet: DevNet, row: dict[str, Any]) -> list[dict[str, Any]]:
    receipts = [devnet.dev.rpc("eth_getTransactionReceipt", a["tx_hash"]) for a in row["attempts"]]
    return [r for r in receipts if r is not None]


async def _assert_paid_once(store: Store, devnet: DevNet, placed: list[Placed], before: ChainBefore) -> None:
    """Every withdrawal confirmed: one mined transaction at its own nonce, the recipient paid once,
    the hold posted and split once, one event of each kind, the ledger sound."""
    rows = [await _row(store, p.withdrawal_id) for p in placed]
    assert [r["status"] for r in rows] == ["confirmed"] * len(placed)
    nonces = sorted(int(r["nonce"]) for r in rows)
    assert nonces == list(range(before.nonce, before.nonce + len(placed)))
    assert _nonce(devnet) == before.nonce + len(placed)  # no other transaction left the hot wallet
    for row in rows:
        mined = _mined_attempts(devnet, row)
        assert len(mined) == 1, f"withdrawal {row['id']}: {len(mined)} of its transactions mined"
        assert mined[0]["status"] == "0x1" and mined[0]["from"].lower() == HOT
        assert row["tx_hash"] == mined[0]["transactionHash"]
    native = sum(p.amount_minor for p in placed if p.asset == ETH)
    token = sum(p.amount_minor for p in placed if p.asset == USDT)
    assert devnet.dev.balance_wei(RECIPIENT) - before.recipient_wei == native
    assert devnet.dev.token_balance(devnet.token, RECIPIENT) - before.recipient_token_minor == token
    for asset in {p.asset for p in placed}:  # the system side of the postings: nothing more, nothing less
        of_asset = [p for p in placed if p.asset == asset]
        held = sum(p.amount_minor + p.fee_minor for p in of_asset)
        assert await store.ledger.account(hold_account(asset)) == _sums(posted_debits=held, posted_credits=held)
        paid = sum(p.amount_minor for p in of_asset)
        assert await store.ledger.account(hot_account(CHAIN, asset)) == _sums(posted_credits=paid)
        fees = sum(p.fee_minor for p in of_asset)
        assert await store.ledger.account(fees_account(asset)) == _sums(posted_credits=fees)
    for p in placed:
        assert await _keys(store, p) == {"post", "paid", "fee"}
        assert await _balance(store, p) == (p.credit_minor - p.amount_minor - p.fee_minor, 0)
        assert await _events(store, "withdrawal.broadcast", p) == 1
        assert await _events(store, "withdrawal.confirmed", p) == 1
        assert await _events(store, "withdrawal.failed", p) == 0
    assert await store.ledger.check_invariants() == []


# -- one withdrawal, killed at each step of its way to confirmed ----------------------------------------
@pytest.mark.parametrize("step", ["after_sign", "after_broadcast", "after_receipt", "settle_posted", "settle_paid"])
async def test_a_withdrawal_killed_at_each_step_is_sent_once_and_posted_once(
        store: Store, store_url: str, devnet: DevNet, tmp_path: Path, step: str) -> None:
    raw = _raw(store_url, devnet)
    placed = await _place(store, raw, telegram_id=5, asset=ETH, amount_minor=AMOUNT_WEI, credit_minor=CREDIT_WEI)
    before = _chain_before(devnet)

    await killed_at(raw, hook=HOOK, step=step, log_path=tmp_path / "killed.log",
                    between=lambda: devnet.dev.mine(1))
    row = await _row(store, placed.withdrawal_id)
    keys = await _keys(store, placed)
    if step == "after_sign":
        assert row["status"] == "signed" and len(row["attempts"]) == 1
        assert _nonce(devnet, "pending") == before.nonce  # persisted, never sent
    else:
        assert _nonce(devnet) == before.nonce + 1  # sent and mined (automine)
    if step == "after_broadcast":
        assert row["status"] == "signed"  # the kill came before the broadcast was recorded
    if step in ("after_receipt", "settle_posted", "settle_paid"):
        assert row["status"] == "broadcast" and [a["status"] for a in row["attempts"]] == ["mined"]
    assert keys == {"after_sign": set(), "after_broadcast": set(), "after_receipt": set(),
                    "settle_posted": {"post"}, "settle_paid": {"post", "paid"}}[step]
    assert await _events(store, "withdrawal.confirmed", placed) == 0

    await _run_until_final(raw, store, [placed], log_path=tmp_path / "restart.log", devnet=devnet)
    await _assert_paid_once(store, devnet, [placed], before)


# -- a batch: several withdrawals signed by one tick, sent in one JSON-RPC batch -----------------------
@pytest.mark.parametrize("step", ["after_sign", "after_broadcast"])
async def test_a_batch_killed_after_signing_or_sending_pays_each_once(
        store: Store, store_url: str, devnet: DevNet, tmp_path: Path, step: str) -> None:
    raw = _raw(store_url, devnet)
    placed = [await _place(store, raw, telegram_id=50 + i, asset=ETH, amount_minor=(i + 1) * 10**16,
                           credit_minor=CREDIT_WEI) for i in range(BATCH)]  # all pending before the first tick
    before = _chain_before(devnet)

    await killed_at(raw, hook=HOOK, step=step, log_path=tmp_path / "killed.log")
    rows = [await _row(store, p.withdrawal_id) for p in placed]
    # the whole batch was persisted in one transaction (and, for after_broadcast, sent) before the kill
    assert [r["status"] for r in rows] == ["signed"] * BATCH
    assert [len(r["attempts"]) for r in rows] == [1] * BATCH
    assert sorted(int(r["nonce"]) for r in rows) == list(range(before.nonce, before.nonce + BATCH))
    sent = BATCH if step == "after_broadcast" else 0
    assert _nonce(devnet, "pending") == before.nonce + sent

    await _run_until_final(raw, store, placed, log_path=tmp_path / "restart.log", devnet=devnet)
    await _assert_paid_once(store, devnet, placed, before)


# -- a token withdrawal whose transaction reverts on chain: the refund -----------------------------------
@pytest.mark.parametrize("step", ["refund_start", "refund_committed"])
async def test_a_refund_killed_midway_voids_the_hold_exactly_once(
        store: Store, store_url: str, devnet: DevNet, tmp_path: Path, step: str) -> None:
    dev = devnet.dev
    dev.send_token(devnet.token, to=HOT, amount_minor=5 * 10**6)  # less than the withdrawal: transfer() reverts
    raw = _raw(store_url, devnet)
    placed = await _place(store, raw, telegram_id=7, asset=USDT, amount_minor=10 * 10**6, credit_minor=100 * 10**6)
    before = _chain_before(devnet)

    await killed_at(raw, hook=HOOK, step=step, log_path=tmp_path / "killed.log", between=lambda: dev.mine(1))
    row = await _row(store, placed.withdrawal_id)
    mined = _mined_attempts(devnet, row)
    assert len(mined) == 1 and mined[0]["status"] == "0x0"  # our own transaction reverted on chain
    if step == "refund_start":
        assert row["status"] == "broadcast" and await _keys(store, placed) == set()
        assert await _balance(store, placed) == (100 * 10**6 - 10 * 10**6 - placed.fee_minor,
                                                 10 * 10**6 + placed.fee_minor)
    else:
        assert row["status"] == "failed" and await _keys(store, placed) == {"void"}

    # A native withdrawal placed now and confirmed after the restart proves the restarted actor went
    # over the queue (the refunded row included) more than once.
    sentinel = await _place(store, raw, telegram_id=8, asset=ETH, amount_minor=10**16, credit_minor=CREDIT_WEI)
    await _run_until_final(raw, store, [placed, sentinel], log_path=tmp_path / "restart.log", devnet=devnet)
    row = await _row(store, placed.withdrawal_id)
    assert row["status"] == "failed" and "revert" in (row["failure_reason"] or "")
    assert await _keys(store, placed) == {"void"}  # voided once, never posted
    hold = await store.fetch_one("SELECT * FROM transfers WHERE key = ?", row["hold_key"])
    assert hold is not None and hold["status"] == "voided"
    assert await _balance(store, placed) == (100 * 10**6, 0)  # amount and fee back, nothing held
    for account in (hold_account(USDT), hot_account(CHAIN, USDT), fees_account(USDT)):
        assert await store.ledger.account(account) == _sums(), account  # nothing paid, nothing kept
    assert await _events(store, "withdrawal.failed", placed) == 1
    assert await _events(store, "withdrawal.confirmed", placed) == 0
    assert len(_mined_attempts(devnet, row)) == 1
    assert dev.token_balance(devnet.token, RECIPIENT) == before.recipient_token_minor
    assert dev.token_balance(devnet.token, HOT) == 5 * 10**6
    assert (await _row(store, sentinel.withdrawal_id))["status"] == "confirmed"
    assert _nonce(devnet) == before.nonce + 2  # the reverted transaction and the sentinel's
    assert await store.ledger.check_invariants() == []


# -- a replacement signed and persisted, never sent --------------------------------------------------------
@pytest.mark.parametrize("restart_replace_after_s", [REPLACE_AFTER_S, 3600.0],
                         ids=["restart_replaces_again", "the_first_transaction_mines"])
async def test_a_replacement_persisted_but_not_sent_settles_once(
        store: Store, store_url: str, devnet: DevNet, tmp_path: Path, restart_replace_after_s: float) -> None:
    dev = devnet.dev
    raw = _raw(store_url, devnet, replace_after_s=REPLACE_AFTER_S)
    placed = await _place(store, raw, telegram_id=9, asset=ETH, amount_minor=AMOUNT_WEI, credit_minor=CREDIT_WEI)
    before = _chain_before(devnet)
    dev.set_automine(False)  # and no interval mining: the first transaction waits in the pool

    await killed_at(raw, hook=HOOK, step="after_replace_persist", log_path=tmp_path / "killed.log")
    row = await _row(store, placed.withdrawal_id)
    assert row["status"] == "broadcast" and len(row["attempts"]) == 2
    first, replacement = row["attempts"]
    assert first["nonce"] == replacement["nonce"] == row["nonce"]
    assert dev.rpc("eth_getTransactionByHash", first["tx_hash"]) is not None  # in the pool
    assert dev.rpc("eth_getTransactionByHash", replacement["tx_hash"]) is None  # never sent
    assert _nonce(devnet) == before.nonce and _nonce(devnet, "pending") == before.nonce + 1

    # The restart either re-prices again (its own replacement takes the pool's place; blocks are mined
    # only once it is sent) or, with a long replace_after_s, leaves the first transaction to mine: the
    # latest attempt is then not the mined one.
    repricing = restart_replace_after_s == REPLACE_AFTER_S

    async def third_sent() -> bool:
        attempts = (await _row(store, placed.withdrawal_id))["attempts"]
        return len(attempts) >= 3 and attempts[2]["status"] == "broadcast"

    restart = _raw(store_url, devnet, replace_after_s=restart_replace_after_s)
    await _run_until_final(restart, store, [placed], log_path=tmp_path / "restart.log", devnet=devnet,
                           mine_when=third_sent if repricing else None)
    row = await _row(store, placed.withdrawal_id)
    mined = _mined_attempts(devnet, row)
    assert len(mined) == 1
    assert mined[0]["transactionHash"] != replacement["tx_hash"]  # the bytes never sent never mined
    if repricing:
        assert mined[0]["transactionHash"] != first["tx_hash"] and len(row["attempts"]) >= 3
    else:
        assert mined[0]["transactionHash"] == first["tx_hash"] and len(row["attempts"]) == 2
    assert [a["status"] for a in row["attempts"]].count("mined") == 1
    await _assert_paid_once(store, devnet, [placed], before)
