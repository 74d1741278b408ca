"""Schemathesis against the IRT routes with the flow ON (Paystar sandbox): no 5xx, responses match the document."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any


from teller.config import PaystarSettings
from tests.fixtures.http import OPS_TOKEN
from tests.fixtures.teller_app import served_teller
from teller.payments.sandbox import SandboxHandle
from tests.fixtures.initdata import sign_contact
from tests.irt.conftest import irt_settings, person_for

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
RUN_TIMEOUT_S = 240


async def _fuzz(port: int, token: str, path_regex: str, cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json",
        "--include-path-regex", path_regex,
        "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", "15", "--seed", "1", "--phases", "examples,coverage,fuzzing", "--workers", "1",
        "--request-timeout", "10", "--suppress-health-check", "all", "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=cwd,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "Operations:" in text and " 0 selected" not in text, text[-3000:]  # the regex did pick routes
    return text


async def test_fuzzing_the_irt_routes_finds_no_server_error(store: Any, tmp_path: Path, store_backend: str,
                                                           paystar_settings: PaystarSettings,
                                                           paystar_sandbox: SandboxHandle) -> None:
    if store_backend != "sqlite":
        return  # the routes are the same on both; the storage behind them is covered by the flow tests
    settings = irt_settings(paystar_settings, statement_poll_interval_s=1.0)
    async with served_teller(settings, store) as (_teller, port):
        import aiohttp

        from tests.fixtures.http import BOT_TOKEN
        from tests.fixtures.initdata import sign_init_data
        async with aiohttp.ClientSession() as session:
            response = await session.post(f"http://127.0.0.1:{port}/api/v1/auth/telegram",
                                          json={"init_data": sign_init_data(BOT_TOKEN, telegram_id=6001)})
            token = (await response.json())["token"]
            # A verified identity, so that card and IBAN inputs reach the owner check and the provider.
            person = person_for(6001)
            paystar_sandbox.state.add_person(person)
            auth = {"Authorization": f"Bearer {token}"}
            contact = sign_contact(BOT_TOKEN, user_id=6001, phone_number="98" + person.mobile[1:])
            for path, body in (("/api/v1/identity/contact", {"contact": contact}),
                               ("/api/v1/identity/national-code", {"national_code": person.national_code})):
                async with session.post(f"http://127.0.0.1:{port}{path}", json=body, headers=auth) as step:
                    assert step.status == 200, await step.text()
        await _fuzz(port, token, r"^/api/v1/(cards|ibans|identity|irt/)", tmp_path)
        await _fuzz(port, OPS_TOKEN, r"^/ops/irt/", tmp_path)
    assert await store.ledger.check_invariants() == []
