"""POST/GET /api/v1/withdrawals: validation, idempotency, limits, concurrency, ownership (both backends).

The chain here is unreachable on purpose: these tests are about what is accepted and held, not sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teller.storage import Store
from tests.withdrawals.helpers import ETH, RECIPIENT, USDT, running, state_snapshot, withdrawal_settings

GOOD = {"chain": "devnet", "asset": "USDT", "to": RECIPIENT, "amount": "10"}
CHECKSUMMED = "0x52908400098527886E0F7030069857D2E4169EE7"


async def test_accepted_withdrawal_holds_amount_plus_fee_and_is_listed(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        response = await app.withdraw(headers, "k-1", **GOOD)
        assert response.status == 202, await response.text()
        body = await response.json()
        assert body["status"] == "pending" and body["amount"] == "10" and body["fee"] == "0.5"
        assert body["to"].lower() == RECIPIENT and body["tx_hash"] is None and body["failure_reason"] is None
        assert await app.balance(uid, USDT) == (89_500_000, 10_500_000)
        listed = await (await app.client.get("/api/v1/withdrawals", headers=headers)).json()
        assert [w["id"] for w in listed["withdrawals"]] == [body["id"]]
        one = await app.client.get(f"/api/v1/withdrawals/{body['id']}", headers=headers)
        assert one.status == 200 and (await one.json())["id"] == body["id"]
        balances = await (await app.client.get("/api/v1/balances", headers=headers)).json()
        usdt = next(b for b in balances["balances"] if b["asset"] == "USDT")
        assert (usdt["available"], usdt["held"]) == ("89.5", "10.5")
        assert not await store.ledger.check_invariants()


async def test_same_key_same_body_is_one_withdrawal_other_body_is_409(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        first = await app.withdraw(headers, "same", **GOOD)
        again = await app.withdraw(headers, "same", **GOOD)
        assert first.status == 202 and again.status == 200
        assert (await first.json())["id"] == (await again.json())["id"]
        before = await state_snapshot(store)
        other = await app.withdraw(headers, "same", **{**GOOD, "amount": "11"})
        assert other.status == 409 and (await other.json())["error"]["code"] == "idempotency_conflict"
        assert await state_snapshot(store) == before
        assert await app.balance(uid, USDT) == (89_500_000, 10_500_000)
        # another user may use the same key: keys are per user
        uid2, headers2 = await app.sign_in(telegram_id=777)
        await app.credit(uid2, USDT, 20 * 10**6)
        assert (await app.withdraw(headers2, "same", **GOOD)).status == 202
        assert not await store.ledger.check_invariants()


@pytest.mark.parametrize(("field", "value", "code"), [
    ("to", "0x123", "invalid_address"),
    ("to", "not an address", "invalid_address"),
    ("to", CHECKSUMMED[:-1] + "e", "invalid_address"),  # mixed case, checksum broken
    ("to", "0x" + "0" * 40, "invalid_address"),
    ("to", 12345, "invalid_input"),
    ("amount", "-1", "invalid_amount"),
    ("amount", "0", "invalid_amount"),
    ("amount", "1.0000001", "invalid_amount"),  # 7 decimals for a 6-decimal token
    ("amount", "0.5", "invalid_amount"),         # below the minimum of 1
    ("amount", "1e3", "invalid_amount"),
    ("amount", 10, "invalid_input"),
    ("amount", "9" * 200, "invalid_input"),
    ("asset", "DOGE", "unknown_asset"),
    ("chain", "bitcoin", "unknown_asset"),
    ("extra", "x", "invalid_input"),
])
async def test_invalid_values_are_422_and_change_nothing(store: Store, field: str, value: Any, code: str) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        before = await state_snapshot(store)
        response = await app.withdraw(headers, "bad", **{**GOOD, field: value})
        assert response.status == 422, await response.text()
        assert (await response.json())["error"]["code"] == code
        assert await state_snapshot(store) == before


async def test_checksummed_and_lowercase_addresses_are_accepted(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        assert (await app.withdraw(headers, "a", **{**GOOD, "to": CHECKSUMMED})).status == 202
        assert (await app.withdraw(headers, "b", **{**GOOD, "to": CHECKSUMMED.lower()})).status == 202


async def test_malformed_requests_are_4xx_and_change_nothing(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        before = await state_snapshot(store)
        url = "/api/v1/withdrawals"
        no_key = await app.client.post(url, json=GOOD, headers=headers)
        assert no_key.status == 400
        # the stated charset and length: 1 to 64 visible ASCII characters; anything else is a 422
        for key in ("", "k" * 65, "ключ", "a b", "tab\tkey", "wd:1:post é"):
            response = await app.client.post(url, json=GOOD, headers={**headers, "Idempotency-Key": key})
            assert response.status == 422, key
            assert (await response.json())["error"]["code"] == "invalid_idempotency_key", key
        bad_json = await app.client.post(url, data=b"{not json", headers={**headers, "Idempotency-Key": "x"})
        assert bad_json.status == 400
        array = await app.client.post(url, json=[GOOD], headers={**headers, "Idempotency-Key": "x"})
        assert array.status == 400
        huge = await app.client.post(url, data=b'{"a":"' + b"x" * 200_000 + b'"}',
                                     headers={**headers, "Idempotency-Key": "x", "Content-Type": "application/json"})
        assert huge.status == 413
        unauthenticated = await app.client.post(url, json=GOOD, headers={"Idempotency-Key": "x"})
        assert unauthenticated.status == 401
        forged = await app.client.post(url, json=GOOD, headers={"Authorization": "Bearer abc.def.ghi",
                                                                "Idempotency-Key": "x"})
        assert forged.status == 401
        assert await state_snapshot(store) == before


async def test_insufficient_funds_is_409_and_changes_nothing(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 10 * 10**6)  # 10 USDT: 10 + 0.5 fee does not fit
        before = await state_snapshot(store)
        response = await app.withdraw(headers, "k", **GOOD)
        assert response.status == 409 and (await response.json())["error"]["code"] == "insufficient_funds"
        assert await state_snapshot(store) == before


async def test_daily_limit_is_403_limit_exceeded(store: Store) -> None:
    async with running(withdrawal_settings(limits={"devnet:USDT": "25"}), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        assert (await app.withdraw(headers, "1", **GOOD)).status == 202
        assert (await app.withdraw(headers, "2", **GOOD)).status == 202
        before = await state_snapshot(store)
        third = await app.withdraw(headers, "3", **GOOD)
        assert third.status == 403 and (await third.json())["error"]["code"] == "limit_exceeded"
        assert await state_snapshot(store) == before
        assert (await app.withdraw(headers, "4", **{**GOOD, "amount": "5"})).status == 202


async def test_hundred_concurrent_withdrawals_of_the_whole_balance_accept_exactly_one(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, ETH, 10**18)
        body = {"chain": "devnet", "asset": "ETH", "to": RECIPIENT, "amount": "0.9995"}  # + 0.0005 fee = all
        responses = await asyncio.gather(*(app.withdraw(headers, f"c-{i}", **body) for i in range(100)))
        statuses = sorted(r.status for r in responses)
        assert statuses.count(202) == 1 and statuses.count(409) == 99, statuses
        assert await app.balance(uid, ETH) == (0, 10**18)
        rows = await store.fetch_all("SELECT id FROM withdrawals")
        assert len(rows) == 1
        assert not await store.ledger.check_invariants()


async def test_another_users_withdrawal_is_404(store: Store) -> None:
    async with running(withdrawal_settings(), store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        wid = (await (await app.withdraw(headers, "k", **GOOD)).json())["id"]
        _, other = await app.sign_in(telegram_id=999)
        for path in (wid, "999999", "abc", "-1", "9" * 40):
            response = await app.client.get(f"/api/v1/withdrawals/{path}", headers=other)
            assert response.status == 404, path
        assert (await (await app.client.get("/api/v1/withdrawals", headers=other)).json())["withdrawals"] == []
        bad_cursor = await app.client.get("/api/v1/withdrawals?cursor=x", headers=other)
        assert bad_cursor.status == 422
