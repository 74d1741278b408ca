"""`python main.py --dev` (what `make run` starts): a newcomer signs in, gets an address, funds it with
the dev faucet, and sees the deposit credited and the notification written to the log."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.fixtures.common import free_port

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 60.0


async def _poll(check, *, timeout_s: float = WAIT_S):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.25)


async def test_dev_mode_takes_a_deposit_from_the_faucet_to_the_balance(tmp_path: Path) -> None:
    port, sandbox_port = free_port(), free_port()
    log_path = tmp_path / "teller.log"
    env = {**os.environ, "TELLER_PORT": str(port), "TELLER_DEV_SANDBOX_PORT": str(sandbox_port)}
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "main.py"), "--dev", "--var-dir", str(tmp_path / "var"),
            stdout=log, stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            async def up() -> bool:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    assert process.returncode is None, log_path.read_text()[-3000:]
                    return False

            await _poll(up)
            async with http.post(f"{base}/api/v1/auth/telegram", headers={"X-Telegram-Id": "31337"}) as response:
                token = (await response.json())["token"]
            auth = {"Authorization": f"Bearer {token}"}
            async with http.post(f"{base}/api/v1/deposit-addresses", json={"chain": "ethereum"}, headers=auth) as r:
                assert r.status == 200
            async with http.post(f"{base}/dev/faucet", json={"chain": "ethereum", "asset": "USDT", "amount": "7.25"},
                                 headers=auth) as response:
                assert response.status == 202, await response.text()

            async def credited() -> bool:
                async with http.get(f"{base}/api/v1/balances", headers=auth) as response:
                    rows = (await response.json())["balances"]
                return any(b["asset"] == "USDT" and b["available"] == "7.25" for b in rows)

            await _poll(credited)
            await _poll(lambda: _logged(log_path, "Deposit credited: 7.25 USDT"))
            await _walk_the_irt_flow(http, base, auth, f"http://127.0.0.1:{sandbox_port}")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0, log_path.read_text()[-3000:]


async def _walk_the_irt_flow(http: aiohttp.ClientSession, base: str, auth: dict[str, str], sandbox: str) -> None:
    """What a newcomer does in the Mini App's Rial tab, outside Telegram: the dev person's identity, card, IBAN."""
    from teller.payments.sandbox_people import DEV_PERSON

    async with http.post(f"{base}/dev/contact", headers=auth) as response:
        assert response.status == 200, await response.text()
        contact = (await response.json())["contact"]
    steps = [("/api/v1/identity/contact", {"contact": contact}, 200),
             ("/api/v1/identity/national-code", {"national_code": DEV_PERSON.national_code}, 200),
             ("/api/v1/cards", {"card_number": DEV_PERSON.cards[0]}, 201),
             ("/api/v1/ibans", {"iban": DEV_PERSON.ibans[0]}, 201)]
    for path, body, status in steps:
        async with http.post(f"{base}{path}", json=body, headers=auth) as response:
            assert response.status == status, (path, await response.text())
    async with http.post(f"{sandbox}/sandbox/statement/lines", json={
            "amount_rial": 1_500_000, "source_card": DEV_PERSON.cards[0], "bank_reference": "DEV-1"}) as response:
        assert response.status == 201

    async def rials() -> bool:
        async with http.get(f"{base}/api/v1/irt/deposits", headers=auth) as response:
            return [d["bank_reference"] for d in (await response.json())["deposits"]] == ["DEV-1"]

    await _poll(rials)


async def _logged(path: Path, text: str) -> bool:
    return text in path.read_text(errors="replace")
