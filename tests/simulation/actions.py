"""What happens in the world in one step, each drawn from the world's seeded ``rng``, in order.

Users act only through the HTTP API; the chain moves through ``SimChain``; faults are chain reorgs and crashes
(the crash hook's step is armed here and fires whenever Teller reaches it). A call is ``hostile`` when no
correct client would send it: it must be a 4xx and change nothing (oracle 6).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.simulation.world import (
    CHAIN,
    CONFIRMATIONS,
    CRASH_STEPS,
    DECIMALS,
    FEE_MINOR,
    MIN_MINOR,
    RECIPIENTS,
    USERS_MAX,
    User,
    World,
    to_decimal,
)

__all__ = ["ACTIONS", "choose"]

Action = Callable[[World], Awaitable[None]]


def _user(world: World) -> User | None:
    return world.rng.choice(world.users) if world.users else None


async def sign_in(world: World) -> None:
    if len(world.users) >= USERS_MAX:
        return await mine(world)
    world.users.append(await world.sign_in(1000 + len(world.users)))


async def claim_address(world: World) -> None:
    user = _user(world)
    if user is None:
        return await sign_in(world)
    call = await world.call("POST", "/api/v1/deposit-addresses", what="claim_address", headers=user.headers,
                            json={"chain": CHAIN})
    if call.status == 200:
        assert user.address in (None, str(call.body["address"]).lower()), "a second address for one user"
        user.address = str(call.body["address"]).lower()


async def deposit(world: World) -> None:
    funded = [u for u in world.users if u.address]
    if not funded:
        return await claim_address(world)
    user = world.rng.choice(funded)
    assert user.address is not None
    if world.rng.random() < 0.5:
        amount = world.rng.choice([10**15, 10**16, 10**17, 10**18, 2 * 10**18]) + world.rng.randrange(10**12)
        await world.on_chain(world.chain.fund_native, user.address, amount)
    else:
        amount = world.rng.choice([10**6, 5 * 10**6, 10**8, 5 * 10**8]) + world.rng.randrange(10**4)
        await world.on_chain(world.chain.fund_token, user.address, amount)
    if world.rng.random() < 0.5:
        await world.on_chain(world.chain.mine, 1)


async def mine(world: World) -> None:
    await world.on_chain(world.chain.mine, world.rng.randint(1, 3))


async def reorg(world: World) -> None:
    # Mostly inside the confirmation window (nothing credited is touched), sometimes past it.
    depth = world.rng.randint(1, CONFIRMATIONS - 1) if world.rng.random() < 0.8 else world.rng.randint(
        CONFIRMATIONS, CONFIRMATIONS + 2)
    world.log.append(f"   reorg depth {depth}")
    world.reorgs.append((await world.on_chain(world.chain.head), depth))
    await world.on_chain(world.chain.reorg, depth)
    await world.on_chain(world.chain.mine, depth + 1)


def _amount_near_a_limit(world: World, asset: str, available_minor: int) -> int:
    fits = max(MIN_MINOR[asset], available_minor // 4)  # most requests fit: the paths after the hold matter most
    edges = [MIN_MINOR[asset] - 1, MIN_MINOR[asset], available_minor - FEE_MINOR[asset],
             available_minor - FEE_MINOR[asset] + 1, available_minor, fits, fits, fits, fits]
    limit_minor = int(world.limits_minor.get(f"{CHAIN}:{asset}") or 0)
    if limit_minor:
        edges += [limit_minor, limit_minor // 2 + 1]
    return max(world.rng.choice(edges), 1)


async def withdraw(world: World) -> None:
    user = _user(world)
    if user is None:
        return await sign_in(world)
    asset = world.rng.choice(["ETH", "USDT"])
    available = (await world.balances(user)).get(f"{CHAIN}:{asset}", (0, 0))[0]
    amount = _amount_near_a_limit(world, asset, available)
    body = {"chain": CHAIN, "asset": asset, "to": world.rng.choice(RECIPIENTS),
            "amount": to_decimal(amount, DECIMALS[asset])}
    roll = world.rng.random()
    if roll < 0.2 and user.tried:  # the same key and body again: the same answer
        key = world.rng.choice(sorted(user.tried))
        body = user.tried[key]
    elif roll < 0.3 and user.tried:  # the same key, another body: a 409 (or the first's 4xx), nothing changes
        key = world.rng.choice(sorted(user.tried))
        first = user.tried[key]
        other = to_decimal(amount + 1, DECIMALS[asset])
        headers = {**user.headers, "Idempotency-Key": key}
        body = {**first, "amount": other if other != first["amount"] else "1.5"}
        if key in user.keys:  # a withdrawal exists under this key: another body is refused
            await _hostile(world, user, "replay_other_body", "POST", "/api/v1/withdrawals", headers=headers,
                           json=body)
        else:  # the first was refused (funds, limits): the key is still free
            user.keys.pop(key, None)
            user.tried[key] = body
            await world.call("POST", "/api/v1/withdrawals", what="withdraw", headers=headers, json=body)
        return
    elif roll < 0.45:  # a key that spells a settlement step: it must stay the client's own
        key = world.rng.choice(["post", "paid", "fee"])
    else:
        key = f"k{world.step}-{world.rng.randrange(10**6)}"
    concurrent = world.rng.randint(1, 3) if roll > 0.8 else 1
    user.tried.setdefault(key, body)
    headers = {**user.headers, "Idempotency-Key": key}
    calls = await asyncio.gather(*(world.call("POST", "/api/v1/withdrawals", what="withdraw", headers=headers,
                                              json=body) for _ in range(concurrent)))
    for call in calls:
        if call.status not in (200, 202):
            continue
        first = user.keys.setdefault(key, (body, call.body))[1]
        if (call.body["id"], call.body["amount"], call.body["to"]) != (first["id"], first["amount"], first["to"]):
            call.mismatch = f"{call.body['id']}/{call.body['amount']} for {first['id']}/{first['amount']}"


HOSTILE_AMOUNTS = ["-1", "0", "1e3", "0x10", "1.0000000000000000001", "99999999999999999999999999999999999999",
                   "", " 1", "NaN", "1,5", "٣"]


async def _hostile(world: World, user: User, what: str, method: str, path: str, **kwargs: Any) -> None:
    before = await world.user_state(user)
    call = await world.call(method, path, what=what, hostile=True, **kwargs)
    await asyncio.sleep(0)
    call.changed = await world.user_state(user) != before and call.status < 500 and not (
        400 <= call.status < 500 and await _only_background_changes(world, user, before))


async def _only_background_changes(world: World, user: User, before: Any) -> bool:
    """Actors credit and settle while the request runs: a changed balance with no new withdrawal row is theirs."""
    after = await world.user_state(user)
    return after[1] == before[1]


async def hostile(world: World) -> None:
    user = _user(world)
    if user is None:
        return await sign_in(world)
    key = {**user.headers, "Idempotency-Key": f"h{world.step}-{world.rng.randrange(10**6)}"}
    asset = world.rng.choice(["ETH", "USDT"])
    good = {"chain": CHAIN, "asset": asset, "to": RECIPIENTS[0], "amount": "1"}
    others = [u for u in world.users if u is not user and u.tried]
    choices: list[tuple[str, str, str, dict[str, Any]]] = [
        ("bad_amount", "POST", "/api/v1/withdrawals",
         {"headers": key, "json": {**good, "amount": world.rng.choice(HOSTILE_AMOUNTS)}}),
        ("bad_address", "POST", "/api/v1/withdrawals",
         {"headers": key, "json": {**good, "to": world.rng.choice(["0x12", "0x" + "g" * 40, "", "vitalik.eth",
                                                                   "0x" + "AbC" * 13 + "d"])}}),
        ("malformed_json", "POST", "/api/v1/withdrawals",
         {"headers": {**key, "Content-Type": "application/json"},
          "data": world.rng.choice(['{"chain": ', "[]", "null", '{"chain": "sim", "extra": 1}', "\xff"])}),
        ("unknown_asset", "POST", "/api/v1/withdrawals", {"headers": key, "json": {**good, "asset": "DOGE"}}),
        ("no_key", "POST", "/api/v1/withdrawals", {"headers": user.headers, "json": good}),
        ("bad_key", "POST", "/api/v1/withdrawals",
         {"headers": {**user.headers, "Idempotency-Key": "a b"}, "json": good}),
        ("no_token", "POST", "/api/v1/withdrawals", {"headers": {"Idempotency-Key": "x"}, "json": good}),
        ("bad_chain_address", "POST", "/api/v1/deposit-addresses",
         {"headers": user.headers, "json": {"chain": world.rng.choice(["nope", "", 5, None])}}),
    ]
    if others:
        other = world.rng.choice(others)
        key = world.rng.choice(sorted(other.tried))
        wid = other.keys[key][1]["id"] if key in other.keys else "999999"
        choices.append(("other_users_withdrawal", "GET", f"/api/v1/withdrawals/{wid}", {"headers": user.headers}))
    what, method, path, kwargs = choices[-1] if others and world.rng.random() < 0.3 else world.rng.choice(choices)
    await _hostile(world, user, what, method, path, **kwargs)


async def read(world: World) -> None:
    user = _user(world)
    if user is None:
        return await sign_in(world)
    path = world.rng.choice(["/api/v1/balances", "/api/v1/deposits", "/api/v1/withdrawals"])
    await world.call("GET", path, what="read", headers=user.headers)


async def arm_crash(world: World) -> None:
    hook = world.rng.choice(sorted(CRASH_STEPS))
    world.crash_at = (hook, world.rng.choice(CRASH_STEPS[hook]))
    world.log.append(f"   crash armed at {world.crash_at}")


ACTIONS: list[tuple[Action, int]] = [
    (sign_in, 3), (claim_address, 4), (deposit, 10), (mine, 8), (withdraw, 10), (hostile, 5), (read, 2),
    (reorg, 3), (arm_crash, 2),
]


def choose(world: World) -> Action:
    if not world.users:
        return sign_in
    actions, weights = zip(*ACTIONS)
    return world.rng.choices(actions, weights=weights)[0]

