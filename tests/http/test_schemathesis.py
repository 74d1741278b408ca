"""Schemathesis against the live server: no 500, and every response matches the OpenAPI document."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any


from teller.config import PaystarSettings
from tests.fixtures.chain import DevNet
from tests.fixtures.http import OPS_TOKEN, settings_for_tests
from tests.fixtures.teller_app import served_teller

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
RUN_TIMEOUT_S = 300
SIGNER_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"


async def test_fuzzing_the_api_finds_no_server_error_and_no_schema_violation(
        store: Any, tmp_path: Path, store_backend: str, devnet: DevNet, paystar_settings: PaystarSettings) -> None:
    # Every flow on (a chain on the dev anvil, the signer, Paystar's sandbox), so every route is fuzzed.
    settings = settings_for_tests(
        auth={"gateway_secret": "gw-secret-for-tests"}, signer={"mnemonic": SIGNER_MNEMONIC},
        chains=[{"name": "ethereum", "chain_id": devnet.chain_id, "rpc_url": devnet.url, "confirmations": 3,
                 "poll_interval_s": 0.5,
                 "native": {"symbol": "ETH", "decimals": 18, "min_withdrawal": "0.001", "withdrawal_fee": "0.0005"},
                 "tokens": [{"symbol": "USDT", "contract": devnet.token, "decimals": 6,
                             "min_withdrawal": "1", "withdrawal_fee": "0.5"}]}],
        paystar={"base_url": paystar_settings.base_url, "application_id": paystar_settings.application_id,
                 "access_password": paystar_settings.access_password,
                 "refresh_token": paystar_settings.refresh_token},
    )
    async with served_teller(settings, store) as (_teller, port):
        import aiohttp

        async with aiohttp.ClientSession() as session:
            response = await session.post(f"http://127.0.0.1:{port}/api/v1/auth/telegram",
                                          headers={"X-Telegram-Id": "777", "X-Gateway-Secret": "gw-secret-for-tests"})
            token = (await response.json())["token"]
        # Users' routes with a user's token, then ops routes with the ops token.
        for label, bearer, scope in (("user", token, ("--exclude-path-regex", "^/ops/")),
                                     ("ops", OPS_TOKEN, ("--include-path-regex", "^/ops/"))):
            process = await asyncio.create_subprocess_exec(
                str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
                "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
                "--header", f"Authorization: Bearer {bearer}", *scope,
                "--max-examples", "25" if store_backend == "sqlite" else "10", "--seed", "1",
                "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "10",
                "--suppress-health-check", "all", "--no-color",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
            )
            output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
            text = output.decode(errors="replace")
            Path("test-artifacts").mkdir(exist_ok=True)
            Path(f"test-artifacts/schemathesis-{store_backend}-{label}.txt").write_text(text)
            assert process.returncode == 0, text[-6000:]
