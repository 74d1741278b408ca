"""The simulated world: one seed drives users, a chain, faults and crashes around a real Teller.

``World(seed, store_url=...)`` owns a ``random.Random(seed)``; every choice (which user acts, what, how much,
which key, which reorg, when to crash) is drawn from it, in order, by ``run()`` (``actions`` holds the
steps). The Teller is the real one (``start_teller`` on the real store, SQLite or PostgreSQL), reached only
through its HTTP API; the chain is a ``SimChain`` (``chain_port``): the simulated node by default
(``sim_chain``, with the seed's faults), a real anvil with ``chain="anvil"``. The oracles (``oracles``)
read the world's calls and the chain's own truth.

Crashes: the seed arms a step of a flow's crash hook (``deposit_crash_hook``/``withdrawal_crash_hook``);
the hook raises when Teller reaches it, mid-step; the world then abandons the whole tree (actors stopped
where they stand, clients left open as a dead process leaves them), checks the still world's money, drops
every in-memory object, reopens the store and starts a new Teller on it.

What runs on wall time: Teller's actors poll on their own clocks (aiosqlite's thread, asyncpg's sockets),
so a seed fixes the sequence of actions, amounts, keys, reorgs and faults, but not how far the actors got
between two steps; ``run.py`` says how often a failing seed fails again.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from teller.app import Teller, start_teller
from teller.config import Settings
from teller.storage import Store, open_store
from tests.fixtures.chain import TEST_MNEMONIC
from tests.fixtures.http import BOT_TOKEN, settings_for_tests
from tests.fixtures.initdata import sign_init_data
from tests.simulation.chain_port import AnvilChain, SimChain
from tests.simulation.sim_chain import SimNodeChain

__all__ = ["CHAIN", "CONFIRMATIONS", "DAILY_LIMITS", "Call", "SimCrash", "World"]

CHAIN = "sim"
CONFIRMATIONS = 3
POLL_S = 0.05
RPC_TIMEOUT_S = 0.25  # the sim node's timeout fault hangs longer (sim_chain.HANG_S)
STEP_PAUSE_S = 0.02
DAILY_LIMITS = {f"{CHAIN}:ETH": "3", f"{CHAIN}:USDT": "800"}
DECIMALS = {"ETH": 18, "USDT": 6}
MIN_MINOR = {"ETH": 10**15, "USDT": 10**6}
FEE_MINOR = {"ETH": 5 * 10**14, "USDT": 5 * 10**5}
RECIPIENTS = ["0x" + f"{i:02x}" * 20 for i in (0x11, 0x22, 0x33)]
USERS_MAX = 4
CRASH_STEPS = {
    "deposit_crash_hook": ["scanned", "committed", "rewinding", "backfill_scanned", "backfill_committed",
                           "reversing", "reversal_committed", "crediting", "credit_committed"],
    "withdrawal_crash_hook": ["after_sign", "after_broadcast", "after_replace_persist", "after_receipt",
                              "settle_posted", "settle_paid", "refund_start", "refund_committed"],
}


class SimCrash(Exception):
    """Raised by a crash hook at the step the seed chose: the step is cut there, like a power cut."""


@dataclass
class Call:
    """One HTTP request the world made and what it got: oracle 6 reads these."""

    step: int
    what: str
    hostile: bool
    status: int
    body: Any
    changed: bool = False  # a hostile call after which the user's state differed
    mismatch: str = ""     # a replay whose answer differed from the first one


@dataclass
class User:
    telegram_id: int
    user_id: int
    headers: dict[str, str]
    address: str | None = None
    keys: dict[str, tuple[dict[str, str], dict[str, Any]]] = field(default_factory=dict)  # key -> (body, answer)
    # every key sent with its body, answered or not: the seed's later choices draw from this, never from what
    # Teller answered in time (so the story does not depend on how fast the actors ran)
    tried: dict[str, dict[str, str]] = field(default_factory=dict)


def to_decimal(amount_minor: int, decimals: int) -> str:
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**decimals)
    text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
    return sign + text


def world_settings(chain: SimChain, store_url: str) -> Settings:
    table = {
        "name": CHAIN, "chain_id": chain.chain_id, "rpc_url": chain.url, "confirmations": CONFIRMATIONS,
        "poll_interval_s": POLL_S, "rpc_timeout_s": RPC_TIMEOUT_S, "replace_after_s": 2.0,
        "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
        "tokens": [{"symbol": "USDT", "contract": chain.token, "decimals": 6, "min_withdrawal": "1",
                    "withdrawal_fee": "0.5"}],
    }
    return settings_for_tests(chains=[table], signer={"mnemonic": TEST_MNEMONIC},
                              limits={"withdrawal_daily_per_user": DAILY_LIMITS}, database={"url": store_url})


class World:
    def __init__(self, seed: int, *, store_url: str, steps: int = 40, chain: str = "sim",
                 known_faults: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.store_url = store_url
        self.steps = steps
        self.known_faults = known_faults
        self.chain: SimChain = AnvilChain() if chain == "anvil" else SimNodeChain(seed, known_faults=known_faults)
        self.settings: Settings | None = None  # once the chain serves (its URL is in them)
        self.users: list[User] = []
        self.calls: list[Call] = []
        self.log: list[str] = []
        self.crashes = 0
        self.reorgs: list[tuple[int, int]] = []  # (head before, depth)
        self.violations: list[Any] = []
        self.crash_at: tuple[str, str] | None = None
        self.step = 0
        self.teller: Teller | None = None
        self.abandoned: list[Teller] = []
        self.client: TestClient | None = None
        self.store: Store | None = None

    @property
    def limits_minor(self) -> Any:
        assert self.settings is not None
        return self.settings.withdrawal_daily_limits_minor

    # -- life of the Teller ---------------------------------------------------------------------------
    def _hook(self, name: str) -> Any:
        def hook(*where: str) -> None:
            if self.crash_at == (name, where[-1]):
                self.crash_at = None
                self.log.append(f"crash at {name}:{where[-1]}")
                self.crashed.set()
                raise SimCrash(where[-1])
        return hook

    async def start(self) -> None:
        self.crashed = asyncio.Event()
        first = self.settings is None
        if first:
            await self.chain.open()
            self.settings = world_settings(self.chain, self.store_url)
        self.store = await open_store(self.store_url)
        overrides = {name: self._hook(name) for name in CRASH_STEPS}
        self.teller = await start_teller(self.settings, store=self.store, overrides=overrides)
        self.client = TestClient(TestServer(self.teller.app, host="127.0.0.1"))
        await self.client.start_server()

    async def abandon(self) -> None:
        """The whole tree abandoned: actors stopped where they stand, clients never closed, memory dropped."""
        assert self.teller is not None and self.client is not None and self.store is not None
        await self.client.close()
        await self.teller.tree.stop()  # the crashed step already ended mid-way; nothing of it is finished
        from tests.simulation import oracles

        for violation in await oracles.check(self, final=False):  # a still world: the money must add up
            self.violations.append(violation.during(self.step))
        await self.store.close()
        self.abandoned.append(self.teller)  # its clients stay open until the run ends, as a dead process's would
        self.teller = self.client = self.store = None
        self.crashes += 1

    async def stop(self) -> None:
        if self.teller is not None:
            assert self.client is not None and self.store is not None
            await self.client.close()
            await self.teller.stop()
            await self.store.close()
            self.teller = self.client = self.store = None

    async def on_chain(self, lever: Any, *args: Any) -> Any:
        """Pull one of the chain's levers: in a thread if it blocks (anvil), else right here (the sim node)."""
        return await asyncio.to_thread(lever, *args) if self.chain.threaded else lever(*args)

    # -- HTTP ---------------------------------------------------------------------------------------
    async def call(self, method: str, path: str, *, what: str, hostile: bool = False,
                   headers: dict[str, str] | None = None, json: Any = None, data: Any = None) -> Call:
        assert self.client is not None
        response = await self.client.request(method, path, headers=headers, json=json, data=data)
        try:
            body = await response.json()
        except (ValueError, aiohttp.ContentTypeError):
            body = await response.text()
        call = Call(self.step, what, hostile, response.status, body)
        self.calls.append(call)
        return call

    async def sign_in(self, telegram_id: int) -> User:
        call = await self.call("POST", "/api/v1/auth/telegram", what="sign_in",
                               json={"init_data": sign_init_data(BOT_TOKEN, telegram_id=telegram_id)})
        assert call.status == 200, call.body
        return User(telegram_id, int(call.body["user"]["id"]), {"Authorization": f"Bearer {call.body['token']}"})

    async def balances(self, user: User) -> dict[str, tuple[int, int]]:
        """(available, held) per asset code, from the ledger (the HTTP answer rounds nothing, but is text)."""
        assert self.store is not None
        return {b.asset: (b.available_minor, b.held_minor) for b in await self.store.ledger.balances(user.user_id)}

    async def user_state(self, user: User) -> Any:
        assert self.store is not None
        rows = await self.store.fetch_all("SELECT id, status FROM withdrawals WHERE user_id = ? ORDER BY id",
                                          user.user_id)
        return (sorted((await self.balances(user)).items()), [(r["id"]) for r in rows])

    # -- the run -------------------------------------------------------------------------------------
    async def run(self) -> None:
        from tests.simulation import actions, oracles

        await self.start()
        try:
            for step in range(self.steps):
                self.step = step
                action = actions.choose(self)
                self.log.append(f"{self.step}: {action.__name__}")
                await action(self)
                await asyncio.sleep(STEP_PAUSE_S)
                self.violations += [v.during(self.step) for v in await oracles.watch(self)]
                if self.violations:
                    break
                if self.crashed.is_set():
                    await self.abandon()
                    await self.start()
            self.crash_at = None
        except BaseException:
            await self.stop()
            raise

    async def settle(self, *, timeout_s: float = 60.0) -> bool:
        """Liveness: faults off, blocks keep coming until nothing is pending. False past ``timeout_s``."""
        from tests.simulation import oracles

        self.chain.heal()
        self.crash_at = None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            await self.on_chain(self.chain.mine, 1)
            await asyncio.sleep(0.15)
            if self.crashed.is_set():
                await self.abandon()
                await self.start()
            if await oracles.quiet(self):
                return True
        return False

    async def close(self) -> None:
        for teller in self.abandoned:  # only now: aiohttp would warn of the sessions left open otherwise
            for flow in teller.flows:
                if flow.close is not None:
                    await flow.close()
        await self.chain.aclose()
        self.chain.close()
