"""The ops routes for reversed deposits, on both backends: an operator's debit or release happens once,
with its reason, lifting the freeze; a debit the user can no longer pay changes nothing; every hostile
input is a clear 4xx that changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teller.storage.accounts import chain_account, user_account
from teller.storage.deposits import Checkpoint, Deposits, FoundDeposit
from teller.storage.freezes import Freezes
from teller.storage.invariants import check_invariants
from teller.storage.ledger_types import Event
from tests.deposits.helpers import CHAIN, chain_table, deposit_settings, running
from tests.fixtures.http import OPS_TOKEN

DEAD_RPC = "http://127.0.0.1:1"
TOKEN = "0x" + "ab" * 20
CODE = f"{CHAIN}:USDT"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}
REASON = "checked on the explorer: the transaction is gone (TKT-7)"


async def _reversed(store: Any, user_id: int, *, tx: str, amount_minor: int = 9_000_000) -> dict[str, Any]:
    """A deposit credited, then out of chain, then reversed - through the repository, as the watcher does."""
    repo = Deposits(store)
    if await repo.checkpoint(CHAIN) is None:
        await repo.start_at(CHAIN, Checkpoint(10, "0xa10"), parent_hash="0xa09")
    start = await repo.checkpoint(CHAIN)
    assert start is not None
    number = start.block_number + 1
    dep = FoundDeposit(user_id=user_id, asset="USDT", address="0x" + "c3" * 20, tx_hash=tx, ordinal=0, log_index=1,
                       amount_minor=amount_minor, block_number=number, block_hash=f"0xa{number}")
    await repo.commit_scan(CHAIN, previous=start, blocks=[(number, f"0xa{number}", start.block_hash)], found=[dep],
                           statuses={}, seen_events=[], window_blocks=256)
    row = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", tx)
    await store.ledger.transfer(debit=chain_account(CHAIN, CODE), credit=user_account(user_id, CODE), asset=CODE,
                                amount=amount_minor, key=row["credit_key"], writes=repo.credit_writes(row))
    tip = Checkpoint(number, f"0xa{number}")
    await repo.rewind(CHAIN, previous=tip, ancestor=start, reverse_at_block=start.block_number,
                      orphan_event=lambda r: Event("deposit.orphaned", {}))
    row = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", tx)
    await repo.reverse(row, checkpoint=start, event=Event("deposit.reversed", {"deposit_id": str(row["id"])}),
                       reason="test")
    reversed_row = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", tx)
    assert reversed_row["status"] == "reversed_after_credit"
    return reversed_row


async def _snapshot(store: Any) -> dict[str, Any]:
    tables = {table: await store.fetch_all(f"SELECT * FROM {table} ORDER BY 1")
              for table in ("deposits", "transfers", "accounts", "freezes")}
    # the relay marks rows delivered on its own time: what matters is which rows exist
    tables["outbox"] = await store.fetch_all("SELECT id, type, payload FROM outbox ORDER BY id")
    return tables


async def _frozen(store: Any, user_id: int) -> bool:
    return await Freezes(store).blocking(chain=CHAIN, user_id=user_id, asset=CODE) is not None


def _settings() -> Any:
    return deposit_settings(chain_table(rpc_url=DEAD_RPC, token=TOKEN))


LONG = "x" * 501
BAD_RESOLVES = [
    (b"{not json", 400), (b"\xff\xfe", 400), (b"[]", 400), (b'"debit"', 400), (b"", 400),
    (b"{}", 422), (b'{"action": "debit"}', 422), (b'{"reason": "why"}', 422),
    (b'{"action": "refund", "reason": "why"}', 422), (b'{"action": "DEBIT", "reason": "why"}', 422),
    (b'{"action": 1, "reason": "why"}', 422), (b'{"action": ["debit"], "reason": "why"}', 422),
    (b'{"action": "debit", "reason": ""}', 422), (b'{"action": "debit", "reason": "   "}', 422),
    (b'{"action": "debit", "reason": 5}', 422), (b'{"action": "debit", "reason": null}', 422),
    (('{"action": "debit", "reason": "%s"}' % LONG).encode(), 422),
    (b'{"action": "debit", "reason": "why", "amount": "1"}', 422),
    (b'{"action": "debit", "reason": "why"' + b" " * 2_000_000 + b"}", 413),
]


@pytest.mark.parametrize(("data", "status"), BAD_RESOLVES)
async def test_hostile_resolve_bodies_are_4xx_and_change_nothing(store, data, status) -> None:
    async with running(_settings(), store) as app:
        uid, _ = await app.sign_in(2401)
        row = await _reversed(store, uid, tx="0x" + "1" * 64)
        before = await _snapshot(store)
        response = await app.client.post(f"/ops/deposits/{row['id']}/resolve", data=data,
                                         headers={**OPS, "Content-Type": "application/json"})
        assert response.status == status, await response.text()
        assert (await response.json())["error"]["code"]
        assert await _snapshot(store) == before


async def test_hostile_ids_tokens_and_queries_are_4xx_and_change_nothing(store) -> None:
    async with running(_settings(), store) as app:
        uid, user_headers = await app.sign_in(2402)
        row = await _reversed(store, uid, tx="0x" + "2" * 64)
        credited = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", row["tx_hash"])
        body = {"action": "release", "reason": REASON}
        before = await _snapshot(store)
        for headers in ({}, user_headers, {"Authorization": "Bearer not-the-ops-token"}, {"Authorization": OPS_TOKEN}):
            response = await app.client.post(f"/ops/deposits/{row['id']}/resolve", json=body, headers=headers)
            assert response.status == 401
            assert (await app.client.get("/ops/deposits/reversals", headers=headers)).status == 401
        for bad_id in ("abc", "-1", "0", "1e3", "1" * 19, "%20", str(row["id"]) + "x", "999999"):
            response = await app.client.post(f"/ops/deposits/{bad_id}/resolve", json=body, headers=OPS)
            assert response.status == 404, bad_id
        # a deposit that was never reversed is not resolvable (one of another user's, credited)
        other_uid, _ = await app.sign_in(2403)
        await store.execute("UPDATE deposits SET user_id = ? WHERE id = ?", other_uid, credited["id"])
        plain = await _credited_deposit(store, other_uid, tx="0x" + "3" * 64)
        before = await _snapshot(store)
        assert (await app.client.post(f"/ops/deposits/{plain}/resolve", json=body, headers=OPS)).status == 404
        for query in ("state=bogus", "state=" + "o" * 100, "limit=0", "limit=-1", "limit=abc", "limit=100000",
                      "after=abc", "after=-1", "after=" + "9" * 30):
            response = await app.client.get(f"/ops/deposits/reversals?{query}", headers=OPS)
            assert response.status == 422, query
        assert await _snapshot(store) == before


async def _credited_deposit(store: Any, user_id: int, *, tx: str) -> int:
    repo = Deposits(store)
    start = await repo.checkpoint(CHAIN)
    assert start is not None
    number = start.block_number + 1
    dep = FoundDeposit(user_id=user_id, asset="USDT", address="0x" + "d4" * 20, tx_hash=tx, ordinal=0, log_index=0,
                       amount_minor=1, block_number=number, block_hash=f"0xe{number}")
    await repo.commit_scan(CHAIN, previous=start, blocks=[(number, f"0xe{number}", start.block_hash)], found=[dep],
                           statuses={}, seen_events=[], window_blocks=256)
    row = await store.fetch_one("SELECT * FROM deposits WHERE tx_hash = ?", tx)
    await store.ledger.transfer(debit=chain_account(CHAIN, CODE), credit=user_account(user_id, CODE), asset=CODE,
                                amount=1, key=row["credit_key"], writes=repo.credit_writes(row))
    return int(row["id"])


async def test_a_debit_the_user_cannot_pay_changes_nothing_then_a_release_keeps_the_credit(store) -> None:
    async with running(_settings(), store) as app:
        uid, _ = await app.sign_in(2404)
        row = await _reversed(store, uid, tx="0x" + "4" * 64)
        await store.ledger.transfer(debit=user_account(uid, CODE), credit=chain_account(CHAIN, CODE), asset=CODE,
                                    amount=5_000_000, key="test:spent")  # the user withdrew part of it meanwhile
        before = await _snapshot(store)
        response = await app.client.post(f"/ops/deposits/{row['id']}/resolve", headers=OPS,
                                         json={"action": "debit", "reason": REASON})
        assert response.status == 409 and (await response.json())["error"]["code"] == "insufficient_funds"
        assert await _snapshot(store) == before and await _frozen(store, uid)
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["deposit_reversals"]["open"] == 1
        response = await app.client.post(f"/ops/deposits/{row['id']}/resolve", headers=OPS,
                                         json={"action": "release", "reason": REASON})
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["resolution"], body["resolution_reason"]) == ("released", REASON) and body["resolved_at"]
        assert not await _frozen(store, uid)
        freeze = await store.fetch_one("SELECT * FROM freezes WHERE freeze_key = ?", f"deposit:{row['id']}")
        assert (freeze["resolution"], freeze["resolution_reason"]) == ("released", REASON)
        assert (await store.ledger.account(user_account(uid, CODE)))["posted_credits_minor"] == 9_000_000
        after = await _snapshot(store)
        for action in ("release", "debit"):  # a replay, or the other action, once resolved: 409, nothing changes
            response = await app.client.post(f"/ops/deposits/{row['id']}/resolve", headers=OPS,
                                              json={"action": action, "reason": REASON})
            assert response.status == 409
        assert await _snapshot(store) == after
        listed = await (await app.client.get("/ops/deposits/reversals?state=resolved", headers=OPS)).json()
        assert [r["id"] for r in listed["reversals"]] == [str(row["id"])]
        assert (await (await app.client.get("/ops/deposits/reversals", headers=OPS)).json())["reversals"] == []
        status = await (await app.client.get("/ops/status", headers=OPS)).json()
        assert status["deposit_reversals"] == {"open": 0, "items": []}
    assert await check_invariants(store) == []


async def test_two_concurrent_debits_take_the_amount_back_once(store) -> None:
    async with running(_settings(), store) as app:
        uid, _ = await app.sign_in(2405)
        row = await _reversed(store, uid, tx="0x" + "5" * 64)
        body = {"action": "debit", "reason": REASON}
        responses = await asyncio.gather(*(app.client.post(f"/ops/deposits/{row['id']}/resolve", headers=OPS,
                                                           json=body) for _ in range(4)))
        assert sorted(r.status for r in responses) == [200, 409, 409, 409]
        debits = await store.fetch_all("SELECT * FROM transfers WHERE key LIKE 'deposit-reversal:%'")
        assert [(d["key"], d["amount_minor"]) for d in debits] == [(f"deposit-reversal:{row['id']}", 9_000_000)]
        balance = await store.ledger.account(user_account(uid, CODE))
        assert balance["posted_credits_minor"] - balance["posted_debits_minor"] == 0
        assert not await _frozen(store, uid)
        resolved = await store.fetch_one("SELECT * FROM deposits WHERE id = ?", row["id"])
        assert (resolved["resolution"], resolved["resolution_reason"]) == ("debited", REASON)
    assert await check_invariants(store) == []
