"""The oracles: what must hold about the money, judged against the world's own truth (the chain's canonical
blocks, the HTTP answers the world got), never against what Teller believes alone.

``check(world, final=...)`` returns the violations, each named by its oracle:

1. ``deposits``: a final transfer to a deposit address is credited exactly once; nothing is credited that the
   canonical chain lacks, except a deposit Teller flagged (``out_of_chain``/``reversed_after_credit``).
2. ``withdrawals``: a confirmed withdrawal is paid on the canonical chain by its own transaction; a failed
   (refunded) one has no paid transaction; every hot-wallet payment belongs to one confirmed withdrawal;
   no two withdrawals share a nonce and the nonces have no gap.
3. ``balances``: per user and asset, available + held == credited deposits - confirmed (amount + fee); the
   fee account holds the confirmed fees; the daily limit holds.
4. ``invariants``: ``check_invariants()`` is clean.
5. ``events``: every outbox row is delivered; each credit and confirmation has its event.
6. ``http``: no 5xx; every hostile request a 4xx that changed nothing; a replay answers the first answer.
7. ``liveness``: checked by the runner (``World.settle`` within its bound).

``final=False`` (mid-run, with the tree stopped after a crash) skips what may still be in flight.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from teller.storage.invariants import check_invariants
from tests.simulation.chain_port import HOT_WALLET, ChainMove
from tests.simulation.world import CHAIN, CONFIRMATIONS, MIN_MINOR, World

__all__ = ["Violation", "check", "quiet", "watch"]

CREDITED_STATUSES = ("credited", "out_of_chain", "reversed_after_credit")
IN_FLIGHT = ("pending", "signed", "broadcast")


@dataclass(frozen=True)
class Violation:
    oracle: str
    detail: str

    def during(self, step: int) -> Violation:
        return Violation(self.oracle, f"at step {step}: {self.detail}")

    def __str__(self) -> str:
        return f"[{self.oracle}] {self.detail}"


async def _truth(world: World) -> tuple[int, list[ChainMove]]:
    return await world.on_chain(world.chain.head), await world.on_chain(world.chain.canonical)


async def _rows(world: World, sql: str, *args: Any) -> list[dict[str, Any]]:
    assert world.store is not None
    return await world.store.fetch_all(sql, *args)


def _final(move: ChainMove, head: int) -> bool:
    return move.block_number <= head - CONFIRMATIONS - 1  # one block of slack for the watcher's pass


async def deposits(world: World, head: int, moves: list[ChainMove], *, final: bool) -> list[Violation]:
    found: list[Violation] = []
    addresses = {r["address"].lower(): r["user_id"] for r in await _rows(
        world, "SELECT address, user_id FROM deposit_addresses WHERE chain = ?", CHAIN)}
    truth = Counter((m.tx_hash, m.to, m.asset, m.amount_minor) for m in moves
                    if m.to in addresses and m.sender != HOT_WALLET)
    rows = await _rows(world, "SELECT * FROM deposits WHERE chain = ?", CHAIN)
    credited = Counter((r["tx_hash"].lower(), r["address"].lower(), r["asset"], int(r["amount_minor"]))
                       for r in rows if r["credited_at"] is not None)
    for ident, count in credited.items():
        if truth[ident] and count > truth[ident]:
            found.append(Violation("deposits", f"credited {count}x, on chain {truth[ident]}x: {ident}"))
        if final and not truth[ident]:
            flagged = [r for r in rows if (r["tx_hash"].lower(), r["address"].lower(), r["asset"],
                                           int(r["amount_minor"])) == ident and r["status"] != "credited"]
            if len(flagged) < count:
                found.append(Violation("deposits", f"credited but not on the canonical chain: {ident}"))
    found += _unexplained_reversals(world, rows)
    for row in rows:
        if final and row["status"] == "pending" and int(row["block_number"]) <= head - CONFIRMATIONS - 1:
            found.append(Violation("liveness", f"deposit {row['id']} still pending {head - row['block_number']}"
                                               " blocks deep"))
    if final:
        for move in moves:
            ident = (move.tx_hash, move.to, move.asset, move.amount_minor)
            if move.to in addresses and move.sender != HOT_WALLET and _final(move, head) and not credited[ident]:
                found.append(Violation("deposits", f"final on chain, never credited: {ident} block "
                                                   f"{move.block_number} head {head}"))
    return found


def _unexplained_reversals(world: World, rows: list[dict[str, Any]]) -> list[Violation]:
    """A credit can leave the chain only by a reorg at least as deep as the confirmations (a fact at any moment)."""
    return [Violation("deposits", f"deposit {r['id']} credited, then {r['status']}, though no reorg as deep as the"
                                  f" confirmations reached block {r['block_number']}")
            for r in rows if r["status"] in ("out_of_chain", "reversed_after_credit") and not any(
                depth >= CONFIRMATIONS and int(r["block_number"]) > before - depth for before, depth in world.reorgs)]


async def watch(world: World) -> list[Violation]:
    """The cheap checks made after every step, while Teller runs."""
    rows = await _rows(world, "SELECT id, status, block_number FROM deposits WHERE status IN"
                              " ('out_of_chain', 'reversed_after_credit')")
    return _unexplained_reversals(world, rows)


async def withdrawals(world: World, head: int, moves: list[ChainMove], *, final: bool) -> list[Violation]:
    found: list[Violation] = []
    rows = await _rows(world, "SELECT * FROM withdrawals WHERE chain = ?", CHAIN)
    attempts = await _rows(world, "SELECT withdrawal_id, tx_hash, nonce, block_number FROM withdrawal_attempts"
                                  " WHERE chain = ?", CHAIN)
    owner = {a["tx_hash"].lower(): a["withdrawal_id"] for a in attempts}
    by_id = {r["id"]: r for r in rows}
    paid = [m for m in moves if m.sender == HOT_WALLET and m.to != HOT_WALLET]
    paid_ids = Counter(owner.get(m.tx_hash) for m in paid)
    for move in paid:
        wid = owner.get(move.tx_hash)
        if wid is None:
            found.append(Violation("withdrawals", f"the hot wallet paid {move} for no withdrawal attempt"))
            continue
        row = by_id[wid]
        if row["status"] == "failed":
            found.append(Violation("withdrawals", f"withdrawal {wid} refunded but paid on chain by {move.tx_hash}"))
        if (move.to, move.amount_minor, move.asset) != (row["to_address"].lower(), int(row["amount_minor"]),
                                                        row["asset"]):
            found.append(Violation("withdrawals", f"withdrawal {wid} paid {move} instead of its request"))
        if final and row["status"] != "confirmed":
            found.append(Violation("withdrawals", f"withdrawal {wid} paid on chain but {row['status']}"))
    for wid, count in paid_ids.items():
        if wid is not None and count > 1:
            found.append(Violation("withdrawals", f"withdrawal {wid} paid {count} times on chain"))
    if final:
        mined_at = {a["withdrawal_id"]: a["block_number"] for a in attempts if a["block_number"] is not None}
        for row in rows:
            block = mined_at.get(row["id"])
            if block is not None and any(depth >= CONFIRMATIONS and int(block) > before - depth
                                         for before, depth in world.reorgs):
                continue  # settled, then a reorg deeper than the confirmations took its block: out of scope
            if row["status"] == "confirmed" and not paid_ids[row["id"]]:
                found.append(Violation("withdrawals", f"withdrawal {row['id']} confirmed, unpaid on the "
                                                      f"canonical chain (tx {row['tx_hash']})"))
    nonces = Counter(int(r["nonce"]) for r in rows if r["nonce"] is not None)
    for nonce, count in nonces.items():
        if count > 1:
            found.append(Violation("withdrawals", f"nonce {nonce} given to {count} withdrawals"))
    if nonces and sorted(nonces) != list(range(min(nonces), min(nonces) + len(nonces))):
        found.append(Violation("withdrawals", f"hot wallet nonces with a gap: {sorted(nonces)}"))
    return found


async def balances(world: World, *, final: bool) -> list[Violation]:
    found: list[Violation] = []
    assert world.store is not None
    deposit_rows = await _rows(world, "SELECT user_id, asset, amount_minor FROM deposits WHERE chain = ? AND "
                                      "credited_at IS NOT NULL", CHAIN)
    # Settled is the hold posted (the row says ``confirmed`` one transaction later: a crash may sit between).
    withdrawal_rows = await _rows(world, "SELECT w.id, w.user_id, w.asset, w.amount_minor, w.fee_minor, w.status,"
                                         " t.status AS hold FROM withdrawals w LEFT JOIN transfers t ON"
                                         " t.key = w.hold_key WHERE w.chain = ?", CHAIN)
    expected: Counter[tuple[int, str]] = Counter()
    fees: Counter[str] = Counter()
    out: Counter[tuple[int, str]] = Counter()
    for r in deposit_rows:
        expected[(int(r["user_id"]), f"{CHAIN}:{r['asset']}")] += int(r["amount_minor"])
    for r in withdrawal_rows:
        code = f"{CHAIN}:{r['asset']}"
        if final and (r["status"] == "confirmed") != (r["hold"] == "posted"):
            found.append(Violation("balances", f"withdrawal {r['id']} {r['status']} with its hold {r['hold']}"))
        if r["hold"] == "posted":
            expected[(int(r["user_id"]), code)] -= int(r["amount_minor"]) + int(r["fee_minor"])
            fees[code] += int(r["fee_minor"])
        if r["status"] != "failed":
            out[(int(r["user_id"]), code)] += int(r["amount_minor"])
    for user in world.users:
        have = {b.asset: b.available_minor + b.held_minor for b in await world.store.ledger.balances(user.user_id)}
        for code in {c for (u, c) in expected if u == user.user_id} | set(have):
            if have.get(code, 0) != expected[(user.user_id, code)]:
                found.append(Violation("balances", f"user {user.user_id} {code}: available+held {have.get(code, 0)}"
                                                   f" != credited - paid {expected[(user.user_id, code)]}"))
    for code, fee in fees.items() if final else ():  # the fee moves one transaction after the hold's post
        account = await world.store.ledger.account(f"fees:{code}")
        if account["posted_credits_minor"] - account["posted_debits_minor"] != fee:
            found.append(Violation("balances", f"fees:{code} holds {account} for confirmed fees {fee}"))
    for r in withdrawal_rows:
        if int(r["amount_minor"]) < MIN_MINOR[r["asset"]]:
            found.append(Violation("balances", f"withdrawal {r['id']} of {r['amount_minor']} {r['asset']}, under"
                                               " the minimum"))
    for (uid, code), total in out.items():
        limit = world.limits_minor.get(code)
        if limit is not None and total > limit:
            found.append(Violation("balances", f"user {uid} {code}: {total} withdrawn today past the limit {limit}"))
    return found


async def invariants(world: World) -> list[Violation]:
    assert world.store is not None
    return [Violation("invariants", str(p)) for p in await check_invariants(world.store)]


async def events(world: World) -> list[Violation]:
    found: list[Violation] = []
    undelivered = await _rows(world, "SELECT id, type FROM outbox WHERE delivered_at IS NULL")
    if undelivered:
        found.append(Violation("events", f"{len(undelivered)} outbox rows never published: {undelivered[:3]}"))
    kinds = Counter(r["type"] for r in await _rows(world, "SELECT type FROM outbox"))
    credited = len(await _rows(world, "SELECT id FROM deposits WHERE credited_at IS NOT NULL"))
    confirmed = len(await _rows(world, "SELECT id FROM withdrawals WHERE status = 'confirmed'"))
    if kinds["deposit.credited"] < credited:
        found.append(Violation("events", f"{credited} deposits credited, {kinds['deposit.credited']} events"))
    if kinds["withdrawal.confirmed"] < confirmed:
        found.append(Violation("events", f"{confirmed} withdrawals confirmed, {kinds['withdrawal.confirmed']} events"))
    return found


# A 502/503 that names a failing upstream is the contract's honest answer while the world's node or provider
# fails (e.g. a first deposit address while the node is down); any other 5xx, and every 500, is a violation.
UPSTREAM_CODES = frozenset({"chain_unavailable", "provider_unavailable", "telegram_unavailable"})


def _upstream_failure(call: Any) -> bool:
    error = call.body.get("error") if isinstance(call.body, dict) else None
    return call.status in (502, 503) and isinstance(error, dict) and error.get("code") in UPSTREAM_CODES


def http(world: World) -> list[Violation]:
    found: list[Violation] = []
    for call in world.calls:
        if call.status >= 500 and not (_upstream_failure(call) and not call.hostile):
            found.append(Violation("http", f"step {call.step} {call.what}: {call.status} {str(call.body)[:200]}"))
        elif call.hostile and not 400 <= call.status < 500:
            found.append(Violation("http", f"step {call.step} hostile {call.what} answered {call.status}"))
        elif call.changed:
            found.append(Violation("http", f"step {call.step} hostile {call.what} ({call.status}) changed state"))
        elif call.mismatch:
            found.append(Violation("http", f"step {call.step} {call.what}: a replay answered {call.mismatch}"))
    return found


async def check(world: World, *, final: bool) -> list[Violation]:
    head, moves = await _truth(world)
    found = await deposits(world, head, moves, final=final)
    found += await withdrawals(world, head, moves, final=final)
    found += await balances(world, final=final)
    found += await invariants(world)
    if final:
        found += await events(world)
    found += http(world)
    return found


async def quiet(world: World) -> bool:
    """Nothing left in flight: every withdrawal final, every final deposit credited, every event out."""
    if await _rows(world, "SELECT id FROM withdrawals WHERE status IN ('pending', 'signed', 'broadcast')"):
        return False
    if await _rows(world, "SELECT id FROM outbox WHERE delivered_at IS NULL"):
        return False
    head, moves = await _truth(world)
    return not await deposits(world, head, moves, final=True)
