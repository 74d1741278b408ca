"""Property: random transfers, holds, posts, voids and replays agree with a plain in-memory model."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teller.errors import HoldAlreadyResolved, IdempotencyConflict, InsufficientFunds, InvalidAmount, NotFound
from teller.storage import open_store

ASSET = "IRT"
KEYS = 6
_run_ids = itertools.count()

# ops: ("move", debit_idx, credit_idx, amount, key_idx, pending) | ("post", hold_key_idx, key_idx, amount|None)
#      | ("void", hold_key_idx, key_idx) | ("replay", op_index)
_move = st.tuples(st.just("move"), st.integers(0, 3), st.integers(0, 3), st.integers(1, 50),
                  st.integers(0, KEYS - 1), st.booleans())
_post = st.tuples(st.just("post"), st.integers(0, KEYS - 1), st.integers(0, KEYS - 1),
                  st.one_of(st.none(), st.integers(1, 60)))
_void = st.tuples(st.just("void"), st.integers(0, KEYS - 1), st.integers(0, KEYS - 1))
_replay = st.tuples(st.just("replay"), st.integers(0, 30))
OPS = st.lists(st.one_of(_move, _move, _post, _void, _replay), min_size=1, max_size=25)


@dataclass
class Model:
    """The spec, naively: balances per account, transfers by key, hold status."""

    posted: dict[str, int] = field(default_factory=dict)       # credits - debits
    pending_out: dict[str, int] = field(default_factory=dict)
    transfers: dict[str, tuple] = field(default_factory=dict)  # key -> (fingerprint, ...)
    holds: dict[str, list] = field(default_factory=dict)       # key -> [debit, credit, amount, status]

    def available(self, account: str) -> int:
        return self.posted.get(account, 0) - self.pending_out.get(account, 0)

    def move(self, debit: str, credit: str, amount: int, key: str, pending: bool) -> object:
        fingerprint = ("pending" if pending else "single", debit, credit, amount)
        if key in self.transfers:
            return "replay" if self.transfers[key] == fingerprint else IdempotencyConflict
        if debit.startswith("user:") and self.available(debit) < amount:
            return InsufficientFunds
        self.transfers[key] = fingerprint
        if pending:
            self.pending_out[debit] = self.pending_out.get(debit, 0) + amount
            self.holds[key] = [debit, credit, amount, "pending"]
        else:
            self.posted[debit] = self.posted.get(debit, 0) - amount
            self.posted[credit] = self.posted.get(credit, 0) + amount
        return "ok"

    def resolve(self, kind: str, hold_key: str, key: str, amount: int | None) -> object:
        fingerprint = (kind, hold_key, amount if kind == "post" else None)
        if key in self.transfers:
            return "replay" if self.transfers[key] == fingerprint else IdempotencyConflict
        hold = self.holds.get(hold_key)
        if hold is None:
            return NotFound
        if hold[3] != "pending":
            return HoldAlreadyResolved
        debit, credit, held, _ = hold
        take = held if amount is None or kind == "void" else amount
        if take > held:
            return InvalidAmount
        self.transfers[key] = fingerprint
        self.pending_out[debit] -= held
        if kind == "post":
            self.posted[debit] = self.posted.get(debit, 0) - take
            self.posted[credit] = self.posted.get(credit, 0) + take
        hold[3] = "posted" if kind == "post" else "voided"
        return "ok"


def _outcome(result: object) -> object:
    if isinstance(result, Exception):
        return type(result)
    return "replay" if result.replayed else "ok"


async def _run(url: str, ops: list[tuple]) -> None:
    run = next(_run_ids)
    accounts = [f"user:{run * 10 + 1}:{ASSET}", f"user:{run * 10 + 2}:{ASSET}", "bank:irt", "suspense:irt"]
    model = Model()
    store = await open_store(url)
    try:
        ledger = store.ledger
        # Seed each user with funds so debits sometimes pass.
        for i, user in enumerate(accounts[:2]):
            model.move("bank:irt", user, 40, f"r{run}-seed{i}", False)
            await ledger.transfer(debit="bank:irt", credit=user, asset=ASSET, amount=40, key=f"r{run}-seed{i}")
        done: list[tuple] = []
        for op in ops:
            if op[0] == "replay":
                if not done:
                    continue
                op = done[op[1] % len(done)]
            done.append(op)
            if op[0] == "move":
                _, d, c, amount, k, pending = op
                if d == c:
                    continue
                key = f"r{run}-k{k}"
                expected = model.move(accounts[d], accounts[c], amount, key, pending)
                call = ledger.transfer(debit=accounts[d], credit=accounts[c], asset=ASSET, amount=amount,
                                       key=key, pending=pending)
            else:
                hold_key, key = f"r{run}-k{op[1]}", f"r{run}-k{op[2]}"
                amount = op[3] if op[0] == "post" else None
                expected = model.resolve(op[0], hold_key, key, amount)
                call = (ledger.post(pending_key=hold_key, key=key, amount=amount) if op[0] == "post"
                        else ledger.void(pending_key=hold_key, key=key))
            try:
                got = _outcome(await call)
            except Exception as exc:  # noqa: BLE001 - compared with the model below
                got = type(exc)
            assert got == expected, (op, got, expected)
            for user in accounts[:2]:
                row = await ledger.account(user)
                assert row["posted_credits_minor"] - row["posted_debits_minor"] == model.posted.get(user, 0)
                assert row["pending_debits_minor"] == model.pending_out.get(user, 0)
        assert await ledger.check_invariants() == []
    finally:
        await store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_ledger_agrees_with_the_model(store_url: str, ops: list[tuple]) -> None:
    asyncio.run(_run(store_url, ops))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_concurrent_submission_keeps_the_invariants(store_url: str, ops: list[tuple]) -> None:
    """The same ops fired at once (one group-commit batch): whatever wins, the books balance."""

    async def fire() -> None:
        run = next(_run_ids)
        accounts = [f"user:{run * 10 + 1}:{ASSET}", f"user:{run * 10 + 2}:{ASSET}", "bank:irt", "suspense:irt"]
        store = await open_store(store_url)
        try:
            await store.ledger.transfer(debit="bank:irt", credit=accounts[0], asset=ASSET, amount=60, key=f"c{run}")
            calls = []
            for op in ops:
                if op[0] == "move" and op[1] != op[2]:
                    calls.append(store.ledger.transfer(debit=accounts[op[1]], credit=accounts[op[2]], asset=ASSET,
                                                       amount=op[3], key=f"c{run}-k{op[4]}", pending=op[5]))
                elif op[0] in ("post", "void"):
                    kw = {"amount": op[3]} if op[0] == "post" else {}
                    calls.append(getattr(store.ledger, op[0])(pending_key=f"c{run}-k{op[1]}", key=f"c{run}-k{op[2]}", **kw))
            await asyncio.gather(*calls, return_exceptions=True)
            assert await store.ledger.check_invariants() == []
        finally:
            await store.close()

    asyncio.run(fire())
