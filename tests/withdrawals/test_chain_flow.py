"""Withdrawals paid out on a real anvil: native and ERC-20 confirm, a revert refunds, a stuck fee is replaced."""

from __future__ import annotations

import io
import json
from typing import Any

from teller.storage import Store
from tests.fixtures.chain import DevNet
from tests.withdrawals.helpers import ETH, RECIPIENT, USDT, Running, running, wait_for, withdrawal_settings

HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # TEST_MNEMONIC index 0, the hot wallet (prefunded)


async def _status(app: Running, headers: dict[str, str], wid: str) -> dict[str, Any]:
    return await (await app.client.get(f"/api/v1/withdrawals/{wid}", headers=headers)).json()


async def _until_final(app: Running, headers: dict[str, str], wid: str, devnet: DevNet) -> dict[str, Any]:
    async def final() -> dict[str, Any] | None:
        body = await _status(app, headers, wid)
        return body if body["status"] in ("confirmed", "failed") else None
    return await wait_for(final, between=lambda: devnet.dev.mine(1), what=f"withdrawal {wid} to finish")


async def _events(store: Store) -> list[tuple[str, dict[str, Any]]]:
    rows = await store.fetch_all("SELECT type, payload FROM outbox ORDER BY id")
    return [(r["type"], json.loads(r["payload"])) for r in rows if r["type"].startswith("withdrawal.")]


async def test_native_and_token_withdrawals_confirm_and_arrive(store: Store, devnet: DevNet) -> None:
    devnet.dev.send_token(devnet.token, to=HOT, amount_minor=1_000 * 10**6)
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    eth_before = devnet.dev.balance_wei(RECIPIENT)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        await app.credit(uid, USDT, 100 * 10**6)
        native = await app.withdraw(headers, "n", chain="devnet", asset="ETH", to=RECIPIENT, amount="0.25")
        token = await app.withdraw(headers, "t", chain="devnet", asset="USDT", to=RECIPIENT, amount="12.5")
        assert native.status == 202 and token.status == 202
        for response in (native, token):
            body = await _until_final(app, headers, (await response.json())["id"], devnet)
            assert body["status"] == "confirmed", body
            assert body["tx_hash"] and body["failure_reason"] is None
        assert devnet.dev.balance_wei(RECIPIENT) - eth_before == 25 * 10**16
        assert devnet.dev.token_balance(devnet.token, RECIPIENT) == 12_500_000
        assert await app.balance(uid, ETH) == (10**18 - 25 * 10**16 - 5 * 10**14, 0)
        assert await app.balance(uid, USDT) == (100_000_000 - 13_000_000, 0)
        assert await store.ledger.account(f"fees:{USDT}") == {
            "posted_debits_minor": 0, "posted_credits_minor": 500_000,
            "pending_debits_minor": 0, "pending_credits_minor": 0}
        types = [t for t, _ in await _events(store)]
        assert sorted(types) == sorted(["withdrawal.broadcast", "withdrawal.confirmed"] * 2)
        assert all(p["user_id"] == str(uid) for _, p in await _events(store))
        assert not await store.ledger.check_invariants()


async def test_reverting_token_withdrawal_fails_and_refunds(store: Store, devnet: DevNet) -> None:
    devnet.dev.send_token(devnet.token, to=HOT, amount_minor=1_000 * 10**6)
    devnet.dev.set_blocked(devnet.token, RECIPIENT, True)  # the token reverts transfers to it
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        response = await app.withdraw(headers, "r", chain="devnet", asset="USDT", to=RECIPIENT, amount="10")
        body = await _until_final(app, headers, (await response.json())["id"], devnet)
        assert body["status"] == "failed" and "reverted" in body["failure_reason"]
        assert await app.balance(uid, USDT) == (100 * 10**6, 0)  # amount and fee back
        assert devnet.dev.token_balance(devnet.token, RECIPIENT) == 0
        types = [t for t, _ in await _events(store)]
        assert types == ["withdrawal.broadcast", "withdrawal.failed"]
        assert not await store.ledger.check_invariants()


async def test_underpriced_transaction_is_replaced_and_settles_once(store: Store, devnet: DevNet) -> None:
    dev = devnet.dev
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token, replace_after_s=0.3)
    before = dev.balance_wei(RECIPIENT)
    nonce_before = int(dev.rpc("eth_getTransactionCount", HOT, "latest"), 16)
    dev.set_automine(False)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = (await (await app.withdraw(headers, "x", chain="devnet", asset="ETH", to=RECIPIENT,
                                         amount="0.1")).json())["id"]

        async def broadcast() -> bool:
            return (await _status(app, headers, wid))["status"] == "broadcast"
        await wait_for(broadcast, what="the first broadcast")
        first = await store.fetch_one("SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ?", int(wid))
        assert first is not None
        # the base fee jumps past what the first transaction offers: it cannot be mined
        dev.rpc("anvil_setNextBlockBaseFeePerGas", hex(first["max_fee_per_gas_wei"] * 4))
        dev.mine(1)
        assert dev.rpc("eth_getTransactionReceipt", first["tx_hash"]) is None

        async def replaced() -> bool:
            rows = await store.fetch_all("SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ?", int(wid))
            return len(rows) >= 2 and rows[-1]["status"] == "broadcast"
        await wait_for(replaced, what="a replacement")
        body = await _until_final(app, headers, wid, devnet)
        assert body["status"] == "confirmed"
        attempts = await store.fetch_all("SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ? ORDER BY id",
                                         int(wid))
        assert len({a["nonce"] for a in attempts}) == 1
        assert attempts[1]["max_fee_per_gas_wei"] * 100 >= attempts[0]["max_fee_per_gas_wei"] * 110
        assert [a["status"] for a in attempts].count("mined") == 1
        assert dev.balance_wei(RECIPIENT) - before == 10**17  # paid once
        assert int(dev.rpc("eth_getTransactionCount", HOT, "latest"), 16) == nonce_before + 1
        assert await app.balance(uid, ETH) == (10**18 - 10**17 - 5 * 10**14, 0)
        assert not await store.ledger.check_invariants()


async def test_two_instances_on_one_database_pay_a_burst_exactly_once(store: Store, devnet: DevNet, log_stream: io.StringIO) -> None:
    """A burst signed and sent in batches, by two Tellers racing on one database: every withdrawal gets
    its own nonce, is paid once, announced once, and the ledger balances."""
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    eth_before = devnet.dev.balance_wei(RECIPIENT)
    async with running(settings, store) as first, running(settings, store):
        uid, headers = await first.sign_in()
        await first.credit(uid, ETH, 10**18)
        responses = [await first.withdraw(headers, f"burst-{i}", chain="devnet", asset="ETH", to=RECIPIENT,
                                          amount="0.01") for i in range(12)]
        assert [r.status for r in responses] == [202] * 12
        for response in responses:
            body = await _until_final(first, headers, (await response.json())["id"], devnet)
            assert body["status"] == "confirmed", body
        rows = await store.fetch_all("SELECT nonce FROM withdrawals ORDER BY nonce")
        nonces = [int(r["nonce"]) for r in rows]
        assert nonces == list(range(nonces[0], nonces[0] + 12))
        assert devnet.dev.balance_wei(RECIPIENT) - eth_before == 12 * 10**16
        types = sorted(t for t, _ in await _events(store))
        assert types == sorted(["withdrawal.broadcast", "withdrawal.confirmed"] * 12)
        assert await first.balance(uid, ETH) == (10**18 - 12 * (10**16 + 5 * 10**14), 0)
        assert not await store.ledger.check_invariants()
    assert "withdrawals.tick_failed" not in log_stream.getvalue()  # a race between instances is no failure
