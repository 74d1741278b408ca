"""The Reconciler in a real Teller: a broken ledger, a paid withdrawal marked refunded, a deposit credited
twice for one Transfer log - each found within a pass, shown in /ops/status and /ops/metrics, and
freezing every withdrawal; a clean state and a receipt the node does not know are neither."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient

from teller.config import Settings
from teller.storage import chain_account, user_account
from teller.storage.store import StorageError, utc_now
from tests.fixtures.chain import TEST_MNEMONIC, DevNet
from tests.fixtures.http import OPS_TOKEN, settings_for_tests
from tests.fixtures.teller_app import teller_and_client, wait_for
from tests.withdrawals.helpers import CHAIN, chain_table

OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
INTERVAL_S = 0.05
ETH = "ethereum:ETH"
RECIPIENT = "0x2222222222222222222222222222222222222222"
UNKNOWN_TX = "0x" + "ab" * 32


class Ops:
    def __init__(self, client: TestClient, store: Any) -> None:
        self.client, self.store = client, store

    async def status(self) -> dict[str, Any]:
        response = await self.client.get("/ops/status", headers=OPS)
        assert response.status == 200
        return dict(await response.json())

    async def metrics(self) -> dict[str, float]:
        text = await (await self.client.get("/ops/metrics", headers=OPS)).text()
        return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                if line.startswith("teller_reconcile_") or line.startswith("teller_freezes_")}

    async def after_next_pass(self) -> dict[str, Any]:
        """The reconciler's status once a pass has started and finished after this call."""
        before = (await self.status())["reconciler"]["passes"]

        async def done() -> dict[str, Any] | None:
            doc = await self.status()
            return doc if doc["reconciler"]["passes"] >= before + 2 else None

        return dict(await wait_for(done, what="a reconciler pass"))

    async def active_freezes(self) -> list[dict[str, Any]]:
        return await self.store.fetch_all("SELECT * FROM freezes WHERE resolved_at IS NULL ORDER BY id")


@asynccontextmanager
async def running(settings: Settings, store: Any) -> AsyncIterator[Ops]:
    async with teller_and_client(settings, store, reconcile_interval_s=INTERVAL_S) as (_teller, client):
        ops = Ops(client, store)
        await ops.after_next_pass()
        yield ops


def chain_settings(devnet: DevNet) -> Settings:
    return settings_for_tests(chains=[chain_table(rpc_url=devnet.url, token=devnet.token)],
                              signer={"mnemonic": TEST_MNEMONIC})


async def test_a_clean_ledger_is_ok_and_freezes_nothing(store: Any) -> None:
    await store.ledger.transfer(debit=chain_account("ethereum", ETH), credit=user_account(1, ETH), asset=ETH,
                                amount=10**18, key="dep-1")
    async with running(settings_for_tests(chains=[]), store) as ops:
        doc = await ops.after_next_pass()
        reconciler = doc["reconciler"]
        assert reconciler["last_ok"] is True and reconciler["violations"] == []
        assert reconciler["last_run_at"].endswith("Z") and reconciler["checked"]["transfers"] >= 1
        assert doc["freezes"] == {"active": 0, "items": []}
        metrics = await ops.metrics()
        assert metrics["teller_reconcile_ok"] == 1 and metrics["teller_reconcile_violations"] == 0
        assert metrics["teller_reconcile_last_run_timestamp_seconds"] > utc_now().timestamp() - 60
        assert metrics["teller_freezes_active"] == 0
        assert await ops.active_freezes() == []


async def test_an_account_edited_behind_the_ledgers_back_freezes_withdrawals(store: Any) -> None:
    account = user_account(1, ETH)
    await store.ledger.transfer(debit=chain_account("ethereum", ETH), credit=account, asset=ETH, amount=5, key="d1")
    async with running(settings_for_tests(chains=[]), store) as ops:
        assert (await ops.status())["reconciler"]["last_ok"] is True
        await store.execute("UPDATE accounts SET posted_credits_minor = ? WHERE name = ?", 10**21, account)
        reconciler = (await ops.after_next_pass())["reconciler"]
        assert reconciler["last_ok"] is False and reconciler["last_run_at"] is not None
        assert any(v["kind"] == "ledger" and account in v["detail"] for v in reconciler["violations"])
        metrics = await ops.metrics()
        assert metrics["teller_reconcile_ok"] == 0 and metrics["teller_reconcile_violations"] >= 1
        freezes = await ops.active_freezes()
        assert [(f["freeze_key"], f["scope"]) for f in freezes] == [("invariants", "all")]
        assert (await ops.status())["freezes"]["active"] == 1


async def user_id(store: Any, telegram_id: int = 77) -> int:
    return (await store.users.get_or_create(telegram_id=telegram_id)).id


async def record_withdrawal(store: Any, *, status: str, tx_hash: str, nonce: int, from_address: str) -> int:
    """A finished withdrawal row with one signed attempt, as the withdrawal actor would leave it."""
    now = utc_now()
    row = await store.fetch_one(
        "INSERT INTO withdrawals (user_id, chain, asset, to_address, amount_minor, fee_minor, idempotency_key,"
        " request_fingerprint, hold_key, status, from_address, nonce, tx_hash, created_at, updated_at)"
        " VALUES (?, ?, 'ETH', ?, ?, ?, ?, 'f', ?, 'broadcast', ?, ?, ?, ?, ?) RETURNING id",
        await user_id(store), CHAIN, RECIPIENT, 10**15, 0, f"k-{tx_hash}", f"h-{tx_hash}", from_address,
        nonce, tx_hash, now, now)
    await store.execute(
        "INSERT INTO withdrawal_attempts (withdrawal_id, chain, nonce, tx_hash, raw_tx, max_fee_per_gas_wei,"
        " max_priority_fee_per_gas_wei, status, created_at, updated_at) VALUES (?, ?, ?, ?, '0x', 1, 1, ?, ?, ?)",
        row["id"], CHAIN, nonce, tx_hash, "mined" if status == "confirmed" else "failed", now, now)
    # finished last, as the actor does: a pass in between sees it unfinished, never finished without its attempt
    await store.execute("UPDATE withdrawals SET status = ? WHERE id = ?", status, row["id"])
    return int(row["id"])


def pay_from_hot_wallet(devnet: DevNet) -> tuple[str, int, str]:
    """A real payment from the hot wallet (index 0, unlocked on anvil): its hash, nonce and sender."""
    hot = devnet.wallet.address(0).lower()
    nonce = int(devnet.dev.rpc("eth_getTransactionCount", hot, "latest"), 16)
    tx_hash = devnet.dev.rpc("eth_sendTransaction", {"from": hot, "to": RECIPIENT, "value": hex(10**15)})
    devnet.dev.wait_receipt(tx_hash)
    return tx_hash.lower(), nonce, hot


async def record_deposit(store: Any, *, tx_hash: str, asset: str, address: str, amount_minor: int, log_index: int,
                         ordinal: int = 0) -> int:
    """A credited deposit row; ``ordinal`` > 0 claims the transaction's next transfer of that asset to that
    address (where deposits have an ordinal), or names another log index (where they do not)."""
    now = utc_now()
    columns, values = ["log_index"], [log_index + ordinal]
    if await has_column(store, "deposits", "ordinal"):
        columns, values = ["log_index", "ordinal"], [log_index + ordinal, ordinal]
    row = await store.fetch_one(
        f"INSERT INTO deposits (user_id, chain, asset, address, tx_hash, amount_minor, block_number, block_hash,"
        f" status, created_at, updated_at, credited_at, {', '.join(columns)}) VALUES (?, ?, ?, ?, ?, ?, 1, ?,"
        f" 'credited', ?, ?, ?, {', '.join('?' for _ in columns)}) RETURNING id",
        await user_id(store), CHAIN, asset, address, tx_hash, amount_minor, "0x" + "00" * 32, now, now, now, *values)
    return int(row["id"])


async def has_column(store: Any, table: str, column: str) -> bool:
    try:
        await store.fetch_all(f"SELECT {column} FROM {table} LIMIT 0")
    except StorageError:
        return False
    return True


def token_deposit_log(devnet: DevNet, to: str, amount_minor: int) -> tuple[str, int]:
    tx_hash = devnet.dev.mint(devnet.token, to=to, amount_minor=amount_minor)
    receipt = devnet.dev.wait_receipt(tx_hash)
    return tx_hash.lower(), int(receipt["logs"][0]["logIndex"], 16)


async def test_a_paid_withdrawal_marked_refunded_is_a_violation(store: Any, devnet: DevNet) -> None:
    async with running(chain_settings(devnet), store) as ops:
        tx_hash, nonce, hot = pay_from_hot_wallet(devnet)
        wid = await record_withdrawal(store, status="failed", tx_hash=tx_hash, nonce=nonce, from_address=hot)
        reconciler = (await ops.after_next_pass())["reconciler"]
        assert reconciler["last_ok"] is False
        [violation] = reconciler["violations"]
        assert (violation["kind"], violation["chain"], violation["id"]) == ("withdrawal", CHAIN, str(wid))
        assert tx_hash in violation["detail"]
        assert [(f["freeze_key"], f["scope"]) for f in await ops.active_freezes()] == \
            [(f"reconcile:withdrawal:{CHAIN}:{wid}", "all")]
        assert (await ops.metrics())["teller_reconcile_ok"] == 0


async def test_a_deposit_credited_twice_for_one_transfer_log_is_a_violation(store: Any, devnet: DevNet) -> None:
    address = "0x3333333333333333333333333333333333333333"
    tx_hash, log_index = token_deposit_log(devnet, address, 25 * 10**6)
    async with running(chain_settings(devnet), store) as ops:
        first = await record_deposit(store, tx_hash=tx_hash, asset="USDT", address=address, amount_minor=25 * 10**6,
                                     log_index=log_index)
        assert (await ops.after_next_pass())["reconciler"]["last_ok"] is True   # once is right
        second = await record_deposit(store, tx_hash=tx_hash, asset="USDT", address=address,
                                      amount_minor=25 * 10**6, log_index=log_index, ordinal=1)
        reconciler = (await ops.after_next_pass())["reconciler"]
        [violation] = reconciler["violations"]
        assert (violation["kind"], violation["id"]) == ("deposit", tx_hash)
        assert str(first) in violation["detail"] and str(second) in violation["detail"]
        assert [f["freeze_key"] for f in await ops.active_freezes()] == [f"reconcile:deposit:{CHAIN}:{tx_hash}"]
        assert (await ops.metrics())["teller_reconcile_violations"] == 1


async def test_a_receipt_the_node_does_not_know_is_pending_not_a_violation(store: Any, devnet: DevNet) -> None:
    hot = devnet.wallet.address(0).lower()
    paid_hash, paid_nonce, _ = pay_from_hot_wallet(devnet)
    native_to = "0x4444444444444444444444444444444444444444"
    native_hash = devnet.dev.send_native(to=native_to, amount_wei=3 * 10**15)
    token_hash, log_index = token_deposit_log(devnet, native_to, 7 * 10**6)
    async with running(chain_settings(devnet), store) as ops:
        await record_withdrawal(store, status="confirmed", tx_hash=UNKNOWN_TX, nonce=10**6, from_address=hot)
        await record_withdrawal(store, status="failed", tx_hash="0x" + "cd" * 32, nonce=10**6, from_address=hot)
        await record_deposit(store, tx_hash="0x" + "ef" * 32, asset="USDT", address=native_to, amount_minor=1,
                             log_index=0)
        # and the right things, for contrast: a paid withdrawal, a native and a token deposit as on chain
        await record_withdrawal(store, status="confirmed", tx_hash=paid_hash, nonce=paid_nonce, from_address=hot)
        await record_deposit(store, tx_hash=native_hash.lower(), asset="ETH", address=native_to,
                             amount_minor=3 * 10**15, log_index=-1)
        await record_deposit(store, tx_hash=token_hash, asset="USDT", address=native_to, amount_minor=7 * 10**6,
                             log_index=log_index)
        reconciler = (await ops.after_next_pass())["reconciler"]
        assert reconciler["last_ok"] is True and reconciler["violations"] == []
        assert reconciler["pending_receipts"] == 3
        assert reconciler["checked"]["withdrawals"] == 1 and reconciler["checked"]["deposits"] == 2
        assert (await ops.metrics())["teller_reconcile_pending_receipts"] == 3
        assert await ops.active_freezes() == []
        again = (await ops.after_next_pass())["reconciler"]   # still open, asked again, still not a finding
        assert again["pending_receipts"] == 3 and again["violations"] == []


async def test_a_restart_resumes_from_the_stored_cursors(store: Any, devnet: DevNet) -> None:
    hot = devnet.wallet.address(0).lower()
    paid_hash, paid_nonce, _ = pay_from_hot_wallet(devnet)
    async with running(chain_settings(devnet), store) as ops:
        await record_withdrawal(store, status="confirmed", tx_hash=paid_hash, nonce=paid_nonce, from_address=hot)
        waiting = await record_withdrawal(store, status="confirmed", tx_hash=UNKNOWN_TX, nonce=10**6,
                                          from_address=hot)
        first = (await ops.after_next_pass())["reconciler"]
        assert (first["checked"]["withdrawals"], first["pending_receipts"]) == (1, 1)
    cursor = await store.fetch_one("SELECT cursor FROM sync_cursors WHERE name = 'reconcile:withdrawals'")
    assert str(waiting) in cursor["cursor"]
    async with running(chain_settings(devnet), store) as ops:
        again = (await ops.after_next_pass())["reconciler"]
        assert again["checked"].get("withdrawals", 0) == 0 and again["pending_receipts"] == 1   # not re-checked


async def test_a_chain_whose_node_is_down_keeps_its_rows_for_later(store: Any) -> None:
    settings = settings_for_tests(chains=[chain_table(rpc_url="http://127.0.0.1:1", token="0x" + "ab" * 20)],
                                  signer={"mnemonic": TEST_MNEMONIC})
    async with running(settings, store) as ops:
        wid = await record_withdrawal(store, status="failed", tx_hash=UNKNOWN_TX, nonce=0,
                                      from_address="0x" + "11" * 20)
        reconciler = (await ops.after_next_pass())["reconciler"]
        assert reconciler["chain_errors"] == {CHAIN: "chain_unavailable"}
        assert reconciler["last_ok"] is True and reconciler["violations"] == []
        cursor = await store.fetch_one("SELECT cursor FROM sync_cursors WHERE name = 'reconcile:withdrawals'")
        assert f'"open":[{wid}]' in cursor["cursor"]
