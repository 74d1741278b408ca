"""The adversarial review's withdrawal findings, each reproduced: refunds only with proof, a lagging or
lying node, a key chosen to collide with ours, one bad row, limits in the right decimals and across
processes. Each test failed on ce842d2 (the commit the review ran against)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from teller.actors.withdrawal_steps import WithdrawalRequest, hold_key_for, place_command, settle
from teller.assets import AssetRegistry
from teller.errors import DailyLimitExceeded
from teller.storage import Store, open_store
from teller.storage.ledger_keys import WITHDRAWAL_STEPS, withdrawal_step_key
from tests.fixtures.chain import DevNet
from tests.fixtures.http import OPS_TOKEN
from tests.fixtures.lying_node import LyingNode
from tests.withdrawals.helpers import ETH, RECIPIENT, USDT, Running, running, wait_for, withdrawal_settings

HOT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # TEST_MNEMONIC index 0, the hot wallet (prefunded)
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
KEY_CHARS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)


async def _withdraw(app: Running, headers: dict[str, str], key: str, **body: Any) -> str:
    response = await app.withdraw(headers, key, chain="devnet", **body)
    assert response.status == 202, await response.text()
    return str((await response.json())["id"])


async def _status(app: Running, headers: dict[str, str], wid: str) -> dict[str, Any]:
    return await (await app.client.get(f"/api/v1/withdrawals/{wid}", headers=headers)).json()


async def _until(app: Running, headers: dict[str, str], wid: str, devnet: DevNet, *statuses: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body = await _status(app, headers, wid)
        return body if body["status"] in statuses else None
    return await wait_for(reached, between=lambda: devnet.dev.mine(1), what=f"withdrawal {wid} in {statuses}")


async def _event_types(store: Store) -> list[str]:
    return [r["type"] for r in await store.fetch_all("SELECT type FROM outbox ORDER BY id")
            if r["type"].startswith("withdrawal.")]


async def _ops_status(app: Running) -> dict[str, Any]:
    response = await app.client.get("/ops/status", headers=OPS)
    assert response.status == 200
    return await response.json()


def _chain_status(doc: dict[str, Any]) -> dict[str, Any]:
    (chain,) = [c for c in doc["withdrawals"]["chains"] if c["chain"] == "devnet"]
    return chain


async def _ops_chain_when(app: Running, key: str, devnet: DevNet | None = None, *, what: str) -> dict[str, Any]:
    """The chain's withdrawals section of /ops/status, once it counts some ``key`` (incidents, parked)."""
    async def counted() -> dict[str, Any] | None:
        chain = _chain_status(await _ops_status(app))
        return chain if chain[key] else None
    return await wait_for(counted, between=(lambda: devnet.dev.mine(1)) if devnet else None, what=what)


# -- 1. a paid withdrawal with more than 64 signed attempts --------------------------------------------
async def test_a_paid_withdrawal_is_settled_whatever_attempt_mined(store: Store, devnet: DevNet) -> None:
    """The review's reproduction: 66 replacements signed, the last one mined. Its receipt must be found."""
    dev = devnet.dev
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    before = dev.balance_wei(RECIPIENT)
    dev.set_automine(False)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _withdraw(app, headers, "many", asset="ETH", to=RECIPIENT, amount="0.1")
        await wait_for(lambda: _reached(app, headers, wid, "broadcast"), what="the broadcast")
    # what 66 replacements leave on disk: 66 older attempts that never mined, the mined one the newest
    real = await store.fetch_one("SELECT * FROM withdrawal_attempts WHERE withdrawal_id = ?", int(wid))
    assert real is not None
    await store.execute("UPDATE withdrawal_attempts SET id = id + 1000 WHERE id = ?", real["id"])
    for i in range(66):
        await store.execute(
            "INSERT INTO withdrawal_attempts (id, withdrawal_id, chain, nonce, tx_hash, raw_tx, max_fee_per_gas_wei,"
            " max_priority_fee_per_gas_wei, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'replaced', ?, ?)",
            i + 1, int(wid), "devnet", real["nonce"], "0x" + f"{i:064x}", "0x00", 1, 1,
            real["created_at"], real["created_at"])
    dev.set_automine(True)
    dev.mine(1)
    async with running(settings, store) as app:
        body = await _until(app, headers, wid, devnet, "confirmed", "failed")
        assert body["status"] == "confirmed", body
        assert dev.balance_wei(RECIPIENT) - before == 10**17
        assert await app.balance(uid, ETH) == (10**18 - 10**17 - 5 * 10**14, 0)
        assert "withdrawal.failed" not in await _event_types(store)
        assert not await store.ledger.check_invariants()


async def _reached(app: Running, headers: dict[str, str], wid: str, status: str) -> bool:
    return (await _status(app, headers, wid))["status"] == status


# -- 2. a node behind a load balancer answers null for a receipt ------------------------------------
async def test_a_null_receipt_is_not_known_yet_never_a_refund(store: Store, devnet: DevNet) -> None:
    async with LyingNode(devnet.url) as node:
        lies = {"left": 8}

        def lagging(params: list[Any], result: Any) -> Any:
            if lies["left"] > 0:
                lies["left"] -= 1
                return None
            return result
        node.rules["eth_getTransactionReceipt"] = lagging
        settings = withdrawal_settings(rpc_url=node.url, token=devnet.token)
        before = devnet.dev.balance_wei(RECIPIENT)
        async with running(settings, store) as app:
            uid, headers = await app.sign_in()
            await app.credit(uid, ETH, 10**18)
            wid = await _withdraw(app, headers, "lag", asset="ETH", to=RECIPIENT, amount="0.1")
            body = await _until(app, headers, wid, devnet, "confirmed", "failed")
            assert body["status"] == "confirmed", body
            assert lies["left"] == 0
            assert devnet.dev.balance_wei(RECIPIENT) - before == 10**17
            assert await _event_types(store) == ["withdrawal.broadcast", "withdrawal.confirmed"]
            assert not await store.ledger.check_invariants()


# -- the nonce used by a transaction that is not in our records: an incident, never a refund ----------
async def test_a_nonce_used_elsewhere_is_an_incident_that_waits_for_an_operator(store: Store, devnet: DevNet) -> None:
    dev = devnet.dev
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    dev.set_automine(False)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _withdraw(app, headers, "taken", asset="ETH", to=RECIPIENT, amount="0.1")
        await wait_for(lambda: _reached(app, headers, wid, "broadcast"), what="the broadcast")
        row = await store.fetch_one("SELECT nonce FROM withdrawals WHERE id = ?", int(wid))
        assert row is not None
        # the key is used elsewhere: another transaction at our nonce, priced to replace ours in the pool
        dev.rpc("eth_sendTransaction", {"from": HOT, "to": HOT, "value": "0x0", "nonce": hex(row["nonce"]),
                                        "gas": hex(21_000), "maxFeePerGas": hex(10**12),
                                        "maxPriorityFeePerGas": hex(10**12)})
        dev.set_automine(True)
        dev.mine(1)

        chain = await _ops_chain_when(app, "incidents", devnet, what="the incident")
        assert chain["frozen"] and chain["items"][0]["withdrawal_id"] == wid
        assert "none of our" in chain["items"][0]["incident"]
        # no refund: the hold waits for an operator
        body = await _status(app, headers, wid)
        assert body["status"] == "broadcast"
        assert await app.balance(uid, ETH) == (10**18 - 10**17 - 5 * 10**14, 10**17 + 5 * 10**14)
        assert "withdrawal.failed" not in await _event_types(store)
        # the chain's new withdrawals are paused
        paused = await app.withdraw(headers, "after", chain="devnet", asset="ETH", to=RECIPIENT, amount="0.1")
        assert paused.status == 503 and (await paused.json())["error"]["code"] == "withdrawals_paused"
        # an operator decides: the money did not leave
        bad = await app.client.post(f"/ops/withdrawals/{wid}/resolve", headers=OPS, json={"action": "refund"})
        assert bad.status == 422
        resolved = await app.client.post(f"/ops/withdrawals/{wid}/resolve", headers=OPS,
                                         json={"action": "refund", "reason": "checked: our tx never mined"})
        assert resolved.status == 200, await resolved.text()
        assert (await resolved.json())["status"] == "failed"
        assert await app.balance(uid, ETH) == (10**18, 0)
        again = await app.client.post(f"/ops/withdrawals/{wid}/resolve", headers=OPS,
                                      json={"action": "refund", "reason": "twice"})
        assert again.status == 409
        assert not _chain_status(await _ops_status(app))["frozen"]
        freeze = await store.fetch_one("SELECT * FROM freezes WHERE freeze_key = ?", f"withdrawal:{wid}")
        assert freeze is not None and freeze["resolution_reason"] == "checked: our tx never mined"
        assert not await store.ledger.check_invariants()


# -- a token that answers false: status 1, no Transfer log ------------------------------------------
async def test_a_token_receipt_without_the_transfer_is_no_payment(store: Store, devnet: DevNet) -> None:
    devnet.dev.send_token(devnet.token, to=HOT, amount_minor=1_000 * 10**6)
    async with LyingNode(devnet.url) as node:
        # what a token that returns false leaves: status 1, and no Transfer log
        node.rules["eth_getTransactionReceipt"] = lambda params, result: (
            None if result is None else {**result, "logs": []})
        settings = withdrawal_settings(rpc_url=node.url, token=devnet.token)
        async with running(settings, store) as app:
            uid, headers = await app.sign_in()
            await app.credit(uid, USDT, 100 * 10**6)
            wid = await _withdraw(app, headers, "false", asset="USDT", to=RECIPIENT, amount="10")

            chain = await _ops_chain_when(app, "incidents", devnet, what="the incident")
            assert "no Transfer" in chain["items"][0]["incident"]
            assert (await _status(app, headers, wid))["status"] == "broadcast"  # neither confirmed nor refunded
            assert "withdrawal.confirmed" not in await _event_types(store)


# -- 3. a client's Idempotency-Key chosen to be a system key -----------------------------------------
async def test_a_client_key_cannot_take_a_settlement_key(store: Store) -> None:
    """User 1's withdrawal 1 is pending; user 1 then asks with the keys ``post`` and ``void``. On ce842d2
    the hold keys were ``wd:1:post`` and ``wd:1:void``: withdrawal 1's own settlement and refund keys."""
    async with running(withdrawal_settings(), store) as app:  # a dead node: nothing moves on its own
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        first = await _withdraw(app, headers, "first", asset="ETH", to=RECIPIENT, amount="0.1")
        for key in ("post", "void", "paid", "fee"):
            await _withdraw(app, headers, key, asset="ETH", to=RECIPIENT, amount="0.1")
        row = await store.fetch_one("SELECT * FROM withdrawals WHERE id = ?", int(first))
        assert row is not None
        assets = AssetRegistry.from_settings(app.teller.settings)
        await settle(store, row, assets.get(ETH), tx_hash="0x" + "ab" * 32)  # raised IdempotencyConflict
        assert (await store.fetch_one("SELECT status FROM withdrawals WHERE id = ?", int(first)))["status"] == "confirmed"
        assert not await store.ledger.check_invariants()


@given(user_id=st.integers(min_value=1, max_value=2**62), key=KEY_CHARS,
       withdrawal_id=st.integers(min_value=1, max_value=2**62), step=st.sampled_from(WITHDRAWAL_STEPS))
def test_no_client_key_forms_a_system_key(user_id: int, key: str, withdrawal_id: int, step: str) -> None:
    hold = hold_key_for(user_id, key)
    assert hold != withdrawal_step_key(withdrawal_id, step)
    family, uid, digest = hold.split(":")
    assert family == "wdh" and uid == str(user_id) and re.fullmatch("[0-9a-f]{64}", digest)


# -- one row that keeps failing never stops the others -----------------------------------------------
async def test_one_failing_withdrawal_is_parked_and_the_queue_goes_on(store: Store, devnet: DevNet) -> None:
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        devnet.dev.set_automine(False)
        bad = await _withdraw(app, headers, "bad", asset="ETH", to=RECIPIENT, amount="0.1")
        await wait_for(lambda: _reached(app, headers, bad, "broadcast"), what="the broadcast")
        # its settlement key is taken by something else: its settle fails every time
        await store.ledger.transfer(debit=f"chain:devnet:{ETH}", credit=f"fees:{ETH}", asset=ETH, amount=1,
                                    key=withdrawal_step_key(int(bad), "paid"))
        devnet.dev.set_automine(True)
        good = await _withdraw(app, headers, "good", asset="ETH", to=RECIPIENT, amount="0.1")
        body = await _until(app, headers, good, devnet, "confirmed", "failed")
        assert body["status"] == "confirmed"

        chain = await _ops_chain_when(app, "parked", devnet, what="the bad row parked")
        (item,) = chain["items"]
        assert item["withdrawal_id"] == bad and "IdempotencyConflict" in item["last_error"]
        assert item["retry_at"] is not None
        assert not chain["frozen"]


# -- 5. the daily limit in the decimals of its own chain's asset --------------------------------------
async def test_a_daily_limit_counts_its_own_chain_asset(store: Store) -> None:
    async with running(withdrawal_settings(limits={USDT: "25"}), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        assert (await app.withdraw(headers, "a", chain="devnet", asset="USDT", to=RECIPIENT, amount="20")).status == 202
        over = await app.withdraw(headers, "b", chain="devnet", asset="USDT", to=RECIPIENT, amount="5.000001")
        assert over.status == 403 and (await over.json())["error"]["code"] == "limit_exceeded"
        assert (await app.withdraw(headers, "c", chain="devnet", asset="USDT", to=RECIPIENT, amount="5")).status == 202


# -- 6. two processes, one limit ----------------------------------------------------------------------
async def test_the_daily_limit_holds_across_processes(store: Store, store_url: str) -> None:
    settings = withdrawal_settings(limits={USDT: "15"})
    assets = AssetRegistry.from_settings(settings)
    others = [await open_store(store_url) for _ in range(2)]
    try:
        user = await store.users.get_or_create(telegram_id=77)
        await store.ledger.transfer(debit=f"chain:devnet:{USDT}", credit=f"user:{user.id}:{USDT}", asset=USDT,
                                    amount=100 * 10**6, key="fund")
        for round_ in range(3):
            requests = [WithdrawalRequest(user_id=user.id, idempotency_key=f"r{round_}-{i}", asset=assets.get(USDT),
                                          to_address=RECIPIENT, amount_minor=10 * 10**6, daily_limit_minor=15 * 10**6)
                        for i in range(2)]
            outcomes = await asyncio.gather(*(place_command(r)(s, user.id) for r, s in zip(requests, others)),
                                            return_exceptions=True)
            accepted = [o for o in outcomes if not isinstance(o, BaseException)]
            refused = [o for o in outcomes if isinstance(o, DailyLimitExceeded)]
            # the first round takes 10 of 15; after it, no request of 10 fits, from either process
            assert len(accepted) == (1 if round_ == 0 else 0) and len(refused) == 2 - len(accepted), outcomes
        rows = await store.fetch_all("SELECT amount_minor FROM withdrawals WHERE user_id = ?", user.id)
        assert [r["amount_minor"] for r in rows] == [10 * 10**6]
        assert not await store.ledger.check_invariants()
    finally:
        for other in others:
            await other.close()


async def test_frozen_withdrawals_answer_clearly_and_change_nothing(store: Store) -> None:
    from teller.storage.freezes import Freezes

    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        await store.run_atomic([Freezes.freeze_write("deposit:1", scope="user_asset", chain="devnet", user_id=uid,
                                                     asset=USDT, reason="a credited deposit left the chain")])
        before = await store.fetch_all("SELECT * FROM withdrawals")
        frozen = await app.withdraw(headers, "f", chain="devnet", asset="USDT", to=RECIPIENT, amount="10")
        assert frozen.status == 403 and (await frozen.json())["error"]["code"] == "withdrawals_frozen"
        assert await store.fetch_all("SELECT * FROM withdrawals") == before
        assert await app.balance(uid, USDT) == (100 * 10**6, 0)
        # another asset of the same user is not frozen
        await app.credit(uid, ETH, 10**18)
        assert (await app.withdraw(headers, "e", chain="devnet", asset="ETH", to=RECIPIENT, amount="0.1")).status == 202
        listed = await (await app.client.get("/ops/freezes", headers=OPS)).json()
        (freeze,) = listed["freezes"]
        for hostile in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "ok", "extra": 1}):
            assert (await app.client.post(f"/ops/freezes/{freeze['id']}/release", headers=OPS,
                                          json=hostile)).status in (400, 422)
        assert (await app.client.post("/ops/freezes/999/release", headers=OPS, json={"reason": "x"})).status == 404
        assert (await app.client.post(f"/ops/freezes/{freeze['id']}/release", headers=headers,
                                      json={"reason": "x"})).status == 401
        released = await app.client.post(f"/ops/freezes/{freeze['id']}/release", headers=OPS,
                                         json={"reason": "reviewed"})
        assert released.status == 200 and (await released.json())["resolution_reason"] == "reviewed"
        assert (await app.withdraw(headers, "f", chain="devnet", asset="USDT", to=RECIPIENT, amount="10")).status == 202


async def test_a_transaction_the_node_keeps_rejecting_is_parked_with_its_reason(store: Store, devnet: DevNet) -> None:
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    unfunded = replace(settings, signer=replace(settings.signer, hot_wallet_index=40))  # no gas money
    async with running(unfunded, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        wid = await _withdraw(app, headers, "broke", asset="ETH", to=RECIPIENT, amount="0.1")

        (item,) = (await _ops_chain_when(app, "parked", what="the rejected row parked"))["items"]
        assert item["withdrawal_id"] == wid and "rejects" in item["last_error"]
        assert (await _status(app, headers, wid))["status"] == "signed"  # the hold stays: nothing was sent
        assert "withdrawal.failed" not in await _event_types(store)


async def test_an_operator_refunds_only_what_never_left(store: Store, devnet: DevNet) -> None:
    """A row never signed may be refunded by an operator; a sent one outside an incident may not."""
    async with running(withdrawal_settings(), store) as app:  # a dead node: nothing gets signed
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        pending = await _withdraw(app, headers, "p", asset="ETH", to=RECIPIENT, amount="0.1")
        for hostile in ({"action": "burn", "reason": "x"}, {"action": "refund", "reason": ""},
                        {"action": "refund", "reason": "x", "amount": "1"}, {"action": ["refund"], "reason": "x"}):
            response = await app.client.post(f"/ops/withdrawals/{pending}/resolve", headers=OPS, json=hostile)
            assert response.status in (400, 422), hostile
        for path in ("/ops/withdrawals/999/resolve", "/ops/withdrawals/abc/resolve", "/ops/withdrawals/0/resolve"):
            response = await app.client.post(path, headers=OPS, json={"action": "refund", "reason": "x"})
            assert response.status == 404, path
        user = await app.client.post(f"/ops/withdrawals/{pending}/resolve", headers=headers,
                                     json={"action": "refund", "reason": "x"})
        assert user.status == 401
        settle_pending = await app.client.post(f"/ops/withdrawals/{pending}/resolve", headers=OPS,
                                               json={"action": "settle", "reason": "x"})
        assert settle_pending.status == 409  # nothing was sent: nothing to settle
        assert await app.balance(uid, ETH) == (10**18 - 10**17 - 5 * 10**14, 10**17 + 5 * 10**14)
        refunded = await app.client.post(f"/ops/withdrawals/{pending}/resolve", headers=OPS,
                                         json={"action": "refund", "reason": "the user asked to cancel"})
        assert refunded.status == 200 and (await refunded.json())["status"] == "failed"
        assert await app.balance(uid, ETH) == (10**18, 0)
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    devnet.dev.set_automine(False)
    async with running(settings, store) as app:
        sent = await _withdraw(app, headers, "s", asset="ETH", to=RECIPIENT, amount="0.1")
        await wait_for(lambda: _reached(app, headers, sent, "broadcast"), what="the broadcast")
        refused = await app.client.post(f"/ops/withdrawals/{sent}/resolve", headers=OPS,
                                        json={"action": "refund", "reason": "x"})
        assert refused.status == 409  # it may be mined any moment: only proof refunds it
        devnet.dev.set_automine(True)
        body = await _until(app, headers, sent, devnet, "confirmed", "failed")
        assert body["status"] == "confirmed"
        assert not await store.ledger.check_invariants()


async def test_a_hold_resolved_behind_the_rows_back_parks_that_row_only(store: Store, devnet: DevNet) -> None:
    """HoldAlreadyResolved (e.g. after a reorg and a crash): the row is parked, the queue goes on."""
    settings = withdrawal_settings(rpc_url=devnet.url, token=devnet.token)
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        devnet.dev.set_automine(False)
        odd = await _withdraw(app, headers, "odd", asset="ETH", to=RECIPIENT, amount="0.1")
        await wait_for(lambda: _reached(app, headers, odd, "broadcast"), what="the broadcast")
        row = await store.fetch_one("SELECT hold_key FROM withdrawals WHERE id = ?", int(odd))
        assert row is not None
        await store.ledger.void(pending_key=row["hold_key"], key="something-else-voided-it")
        devnet.dev.set_automine(True)
        good = await _withdraw(app, headers, "fine", asset="ETH", to=RECIPIENT, amount="0.1")
        assert (await _until(app, headers, good, devnet, "confirmed", "failed"))["status"] == "confirmed"

        (item,) = (await _ops_chain_when(app, "parked", devnet, what="the odd row parked"))["items"]
        assert item["withdrawal_id"] == odd and "HoldAlreadyResolved" in item["last_error"]
