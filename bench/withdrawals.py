"""Withdrawal benchmark: POST to broadcast against a bare eth-account + web3 script, in the same run.

Figures (medians of REPEATS rounds, interleaved; the machine is noisy, read the ratio):
  raw     a bare script: sign N EIP-1559 transfers with eth-account (coincurve) and send each with
          web3's ``eth_sendRawTransaction``, one after the other
  teller  N users each POST one withdrawal (CONCURRENCY requests in flight) to a running Teller on SQLite;
          timed until every one is ``broadcast`` (signed by the Signer, persisted, accepted by the node)
  ratio   teller / raw, target >= 0.5

Both send to one anvil with automine off (only the signing and the sending are measured, not mining).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from eth_account import Account  # noqa: E402
from web3 import AsyncHTTPProvider, AsyncWeb3  # noqa: E402

from teller.app import start_teller  # noqa: E402
from teller.chain.anvil import ANVIL_DEFAULT_MNEMONIC, AnvilProcess  # noqa: E402
from teller.chain.keys import HdWallet  # noqa: E402
from teller.config import settings_from_mapping  # noqa: E402
from teller.log import configure_logging  # noqa: E402
from teller.storage import chain_account, user_account  # noqa: E402
from tests.fixtures.initdata import sign_init_data  # noqa: E402

N = 150
REPEATS = 3
CONCURRENCY = 16
TARGET_RATIO = 0.5
WAIT_S = 60.0
BOT_TOKEN = "123456:bench-token"
RECIPIENT = "0x1111111111111111111111111111111111111111"


async def raw_round(url: str, key: bytes, chain_id: int) -> float:
    w3 = AsyncWeb3(AsyncHTTPProvider(url))
    session = ClientSession()
    await w3.provider.cache_async_session(session)
    sender = Account.from_key(key).address
    nonce = await w3.eth.get_transaction_count(sender, "pending")
    started = time.perf_counter()
    for i in range(N):
        signed = Account.sign_transaction({
            "type": 2, "chainId": chain_id, "nonce": nonce + i, "to": RECIPIENT, "value": 10**15, "gas": 21_000,
            "maxFeePerGas": 20 * 10**9, "maxPriorityFeePerGas": 10**9, "data": b"", "accessList": [],
        }, key)
        await w3.eth.send_raw_transaction(signed.raw_transaction)
    elapsed = time.perf_counter() - started
    await session.close()
    return N / elapsed


async def teller_round(client: TestClient, store, headers: list[dict[str, str]], tag: str) -> float:  # type: ignore[no-untyped-def]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def post(i: int) -> None:
        async with gate:
            response = await client.post("/api/v1/withdrawals", headers={**headers[i], "Idempotency-Key": f"{tag}-{i}"},
                                         json={"chain": "bench", "asset": "ETH", "to": RECIPIENT, "amount": "0.001"})
            assert response.status == 202, await response.text()

    started = time.perf_counter()
    await asyncio.gather(*(post(i) for i in range(N)))
    deadline = started + WAIT_S
    while True:
        rows = await store.fetch_all("SELECT status FROM withdrawals WHERE idempotency_key LIKE ?", f"{tag}-%")
        if sum(r["status"] == "broadcast" for r in rows) == N:
            break
        assert time.perf_counter() < deadline, "withdrawals did not all broadcast in time"
        await asyncio.sleep(0.02)
    return N / (time.perf_counter() - started)


async def main() -> None:
    configure_logging()
    with AnvilProcess(chain_id=31337, mnemonic=ANVIL_DEFAULT_MNEMONIC) as anvil, tempfile.TemporaryDirectory() as tmp:
        anvil.dev.set_automine(False)
        raw = {
            "auth": {"bot_token": BOT_TOKEN, "jwt_secret": "j" * 48, "ops_token": "ops"},
            "server": {"rate_limit_per_user_per_s": 10_000.0, "rate_limit_per_ip_per_s": 10_000.0,
                       "rate_limit_burst": 10_000},
            "database": {"url": f"sqlite:///{tmp}/bench.db"},
            "signer": {"mnemonic": ANVIL_DEFAULT_MNEMONIC},
            "chains": [{"name": "bench", "chain_id": 31337, "rpc_url": anvil.url, "confirmations": 1,
                        "poll_interval_s": 0.05, "native": {"symbol": "ETH", "decimals": 18,
                                                             "min_withdrawal": "0.001", "withdrawal_fee": "0"}}],
        }
        # A daily limit is configured, as in production: each hold then also takes its (user, asset) lock
        # and sums the day in its own transaction. BENCH_NO_DAILY_LIMIT=1 measures the path without it.
        if not os.environ.get("BENCH_NO_DAILY_LIMIT"):
            raw["limits"] = {"withdrawal_daily_per_user": {"bench:ETH": "1000000"}}
        settings = settings_from_mapping(raw, environ={})
        teller = await start_teller(settings)
        client = TestClient(TestServer(teller.app, host="127.0.0.1"))
        await client.start_server()
        store = teller.ctx.store
        headers = []
        for i in range(N):
            answer = await (await client.post("/api/v1/auth/telegram", json={
                "init_data": sign_init_data(BOT_TOKEN, telegram_id=1000 + i)})).json()
            uid = int(answer["user"]["id"])
            await store.ledger.transfer(debit=chain_account("bench", "bench:ETH"), credit=user_account(uid, "bench:ETH"),
                                        asset="bench:ETH", amount=10**18, key=f"fund-{uid}")
            headers.append({"Authorization": f"Bearer {answer['token']}"})
        baseline_key = HdWallet(ANVIL_DEFAULT_MNEMONIC).private_key(1)
        raws, tellers = [], []
        try:
            for r in range(REPEATS):
                raws.append(await raw_round(anvil.url, baseline_key, 31337))
                tellers.append(await teller_round(client, store, headers, f"r{r}"))
        finally:
            await client.close()
            await teller.stop()
    raw_rate, teller_rate = statistics.median(raws), statistics.median(tellers)
    ratio = teller_rate / raw_rate
    print(f"raw sign + eth_sendRawTransaction   {raw_rate:8.1f} tx/s   (rounds: {', '.join(f'{x:.0f}' for x in raws)})")
    print(f"teller POST -> broadcast            {teller_rate:8.1f} withdrawals/s   "
          f"(rounds: {', '.join(f'{x:.0f}' for x in tellers)})")
    print(f"ratio teller/raw                    {ratio:8.2f}x   target >= {TARGET_RATIO}x   "
          f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}")


if __name__ == "__main__":
    asyncio.run(main())
