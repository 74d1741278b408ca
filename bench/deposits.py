"""Deposit benchmark (issue 5), on a real anvil and SQLite, figures from one run.

  A  1,000 ERC-20 transfers to 1,000 users' deposit addresses, mined in one block (two batch
     transactions): time from the block reaching its confirmations (the mining call returning) to
     all 1,000 credited (ledger + row + event, each through its user's WalletActor). Target <= 2 s.
     The watcher polls every POLL_S; that latency is inside the figure.
  B  catch-up over CATCHUP_BLOCKS blocks: the watcher's blocks/s from a checkpoint CATCHUP_BLOCKS
     behind the head to the head, against a bare script making the same JSON-RPC calls (full blocks by
     number in batches of 100, 4 batches in flight, plus one eth_getLogs per range) over raw aiohttp,
     no decoding, no database. Medians of REPEATS. Target >= 0.7x.

Usage: ``.venv/bin/python bench/deposits.py`` (about a minute; most of it is anvil mining blocks).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from teller.app import start_teller  # noqa: E402
from teller.chain.anvil import ANVIL_DEFAULT_MNEMONIC, AnvilProcess  # noqa: E402
from teller.chain.devchain import FAUCET_ADDRESS  # noqa: E402
from teller.chain.erc20 import TRANSFER_TOPIC  # noqa: E402
from teller.config import settings_from_mapping  # noqa: E402
from teller.chain.keys import HdWallet  # noqa: E402
from teller.log import configure_logging  # noqa: E402
from teller.storage import open_store  # noqa: E402
from teller.storage.deposits import Deposits  # noqa: E402

USERS = 1_000
CONFIRMATIONS = 3
POLL_S = 0.05
CATCHUP_BLOCKS = 10_000
RANGE_BLOCKS = 500
RPC_BATCH = 100
RPC_IN_FLIGHT = 4
REPEATS = 3
TARGET_CREDIT_S = 2.0
TARGET_CATCHUP_RATIO = 0.7
CHAIN = "bench"


def _settings(url: str, token: str, db: str) -> Any:
    return settings_from_mapping({
        "auth": {"bot_token": "1:x", "jwt_secret": "j" * 48, "ops_token": "o" * 32},
        "database": {"url": f"sqlite:///{db}"},
        "signer": {"mnemonic": ANVIL_DEFAULT_MNEMONIC},
        "chains": [{
            "name": CHAIN, "chain_id": 31337, "rpc_url": url, "confirmations": CONFIRMATIONS,
            "poll_interval_s": POLL_S, "rpc_timeout_s": 30.0, "catchup_range_blocks": RANGE_BLOCKS,
            "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
            "tokens": [{"symbol": "USDT", "contract": token, "decimals": 6, "min_withdrawal": "1",
                        "withdrawal_fee": "0.5"}],
        }],
    }, environ={})


async def _wait(check: Any, *, timeout_s: float, interval_s: float = 0.005) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(interval_s)


async def _raw_catchup(url: str, token: str, address: str, first: int, last: int) -> float:
    """The same calls as the watcher, bare: blocks/s."""
    topic = "0x" + "0" * 24 + address[2:].lower()
    ids = iter(range(1, 10**9))
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        gate = asyncio.Semaphore(RPC_IN_FLIGHT)

        async def post(body: Any) -> Any:
            async with gate, session.post(url, json=body) as resp:
                return await resp.json(content_type=None)

        for start in range(first, last + 1, RANGE_BLOCKS):
            end = min(last, start + RANGE_BLOCKS - 1)
            numbers = list(range(start, end + 1))
            batches = [[{"jsonrpc": "2.0", "id": next(ids), "method": "eth_getBlockByNumber", "params": [hex(n), True]}
                        for n in numbers[i:i + RPC_BATCH]] for i in range(0, len(numbers), RPC_BATCH)]
            answers = await asyncio.gather(*(post(b) for b in batches))
            assert all(a["result"] for batch in answers for a in batch)
            logs = await post({"jsonrpc": "2.0", "id": next(ids), "method": "eth_getLogs", "params": [{
                "fromBlock": hex(start), "toBlock": hex(end), "address": [token],
                "topics": [TRANSFER_TOPIC, None, [topic]]}]})
            assert isinstance(logs["result"], list)
    return (last - first + 1) / (time.perf_counter() - started)


async def _watcher_catchup(anvil: AnvilProcess, token: str, tmp: str, run: int, start_block: int) -> float:
    """From start-up (tree, store, first checkpoint included) to the checkpoint at the head."""
    db = f"{tmp}/catchup-{run}.db"
    store = await open_store(f"sqlite:///{db}")
    try:  # one deposit address, stored before the start, so logs are asked for as in production
        user = await store.users.get_or_create(telegram_id=1)
        wallet = HdWallet(ANVIL_DEFAULT_MNEMONIC)

        async def derive(index: int) -> str:
            return wallet.address(index)

        await Deposits(store).claim_address(user.id, CHAIN, derive=derive, reserved_index=0)
    finally:
        await store.close()
    head = anvil.dev.block_number()
    started = time.perf_counter()
    teller = await start_teller(_settings(anvil.url, token, db),
                                overrides={f"deposit_start_block:{CHAIN}": start_block})
    try:
        service = next(f.services["deposits"] for f in teller.flows if "deposits" in f.services)
        status = service.statuses[CHAIN]
        await _wait(lambda: _at(status, head), timeout_s=300, interval_s=0.01)
        elapsed = time.perf_counter() - started
        return (head - start_block) / elapsed
    finally:
        await teller.stop()


async def _at(status: Any, head: int) -> bool:
    return status.checkpoint is not None and status.checkpoint >= head


async def bench_credit(anvil: AnvilProcess, token: str, tmp: str) -> float:
    dev = anvil.dev
    settings = _settings(anvil.url, token, f"{tmp}/credit.db")
    teller = await start_teller(settings)
    try:
        store = teller.ctx.store
        service = next(f.services["deposits"] for f in teller.flows if "deposits" in f.services)
        users = [await store.users.get_or_create(telegram_id=10_000 + n) for n in range(USERS)]
        addresses = []
        for start in range(0, USERS, 100):
            addresses += await asyncio.gather(*(service.address(u.id, CHAIN) for u in users[start:start + 100]))
        await asyncio.sleep(3 * POLL_S)  # the watcher has loaded the addresses
        dev.set_automine(False)
        half = USERS // 2
        for part in (addresses[:half], addresses[half:]):
            await asyncio.to_thread(dev.batch_send_token, token, [(a, 1_000_000) for a in part], wait=False)
        await asyncio.to_thread(dev.mine, 1)

        async def seen() -> bool:
            row = await store.fetch_one("SELECT COUNT(*) AS n FROM deposits WHERE status = 'pending'")
            return int(row["n"]) >= USERS

        await _wait(seen, timeout_s=60)
        await asyncio.to_thread(dev.mine, CONFIRMATIONS - 1)  # now the deposits' block has its confirmations
        started = time.perf_counter()

        async def credited() -> bool:
            row = await store.fetch_one("SELECT COUNT(*) AS n FROM deposits WHERE status = 'credited'")
            return int(row["n"]) >= USERS

        await _wait(credited, timeout_s=60)
        elapsed = time.perf_counter() - started
        problems = await store.ledger.check_invariants()
        assert not problems, problems
        transfers = await store.fetch_one("SELECT COUNT(*) AS n FROM transfers WHERE key LIKE 'deposit:%'")
        assert int(transfers["n"]) == USERS
        return elapsed
    finally:
        dev.set_automine(True)
        await teller.stop()


async def main() -> None:
    configure_logging(level="WARNING")
    with tempfile.TemporaryDirectory() as tmp, AnvilProcess(chain_id=31337) as anvil:
        dev = anvil.dev
        token = dev.deploy_demo_token()
        dev.mint(token, to=FAUCET_ADDRESS, amount_minor=10**15)

        credit_s = await bench_credit(anvil, token, tmp)

        first = dev.block_number() + 1
        t0 = time.perf_counter()
        for _ in range(CATCHUP_BLOCKS // 1_000):
            await asyncio.to_thread(dev.mine, 1_000)
        mine_s = time.perf_counter() - t0
        last = dev.block_number()
        probe = "0x" + "42" * 20
        raw_rates, watcher_rates = [], []
        for run in range(REPEATS):  # interleaved, so drift in anvil's speed hits both alike
            raw_rates.append(await _raw_catchup(anvil.url, token, probe, first, last))
            watcher_rates.append(await _watcher_catchup(anvil, token, tmp, run, first - 1))
        raw, watcher = statistics.median(raw_rates), statistics.median(watcher_rates)

    ratio = watcher / raw
    print(f"A  1,000 ERC-20 deposits credited after confirmation: {credit_s:.3f} s "
          f"(poll {POLL_S} s included)  target <= {TARGET_CREDIT_S} s  "
          f"{'PASS' if credit_s <= TARGET_CREDIT_S else 'MISS'}")
    print(f"B  catch-up over {last - first + 1} blocks: watcher {watcher:,.0f} blocks/s vs bare RPC {raw:,.0f} "
          f"blocks/s = {ratio:.2f}x  target >= {TARGET_CATCHUP_RATIO}x  "
          f"{'PASS' if ratio >= TARGET_CATCHUP_RATIO else 'MISS'}")
    print(f"   runs: watcher {[round(r) for r in watcher_rates]}, bare {[round(r) for r in raw_rates]}; "
          f"mining the blocks took {mine_s:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
