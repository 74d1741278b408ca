"""POST /dev/contact: dev mode only, and its module is never loaded by a production process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from teller.app import start_teller
from teller.payments.sandbox_people import DEV_PERSON
from tests.fixtures.http import BOT_TOKEN
from tests.fixtures.initdata import sign_init_data
from tests.irt.conftest import irt_settings

ROOT = Path(__file__).resolve().parents[2]


async def _signed_in(client: TestClient, telegram_id: int) -> dict[str, str]:
    auth = await client.post("/api/v1/auth/telegram", json={"init_data": sign_init_data(BOT_TOKEN,
                                                                                         telegram_id=telegram_id)})
    return {"Authorization": f"Bearer {(await auth.json())['token']}"}


async def test_dev_contact_walks_the_real_identity_path(store: Any, paystar_settings: Any, irt_overrides: Any) -> None:
    settings = irt_settings(paystar_settings)
    settings = type(settings)(**{**{f: getattr(settings, f) for f in settings.__dataclass_fields__},
                                 "auth": type(settings.auth)(**{**{f: getattr(settings.auth, f) for f in
                                                                   settings.auth.__dataclass_fields__}, "dev": True})})
    teller = await start_teller(settings, store=store, overrides=irt_overrides)
    try:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            headers = await _signed_in(client, 8001)
            assert (await client.post("/dev/contact")).status == 401
            contact = (await (await client.post("/dev/contact", headers=headers)).json())["contact"]
            shared = await client.post("/api/v1/identity/contact", json={"contact": contact}, headers=headers)
            assert shared.status == 200 and (await shared.json())["mobile_masked"].endswith(DEV_PERSON.mobile[-2:])
            verified = await client.post("/api/v1/identity/national-code",
                                         json={"national_code": DEV_PERSON.national_code}, headers=headers)
            assert (await verified.json())["status"] == "verified"
            card = await client.post("/api/v1/cards", json={"card_number": DEV_PERSON.cards[0]}, headers=headers)
            assert card.status == 201 and (await card.json())["owner_name"] == DEV_PERSON.name
    finally:
        await teller.stop()
    assert await store.ledger.check_invariants() == []


async def test_dev_contact_does_not_exist_outside_dev_mode(store: Any, paystar_settings: Any,
                                                           irt_overrides: Any) -> None:
    teller = await start_teller(irt_settings(paystar_settings), store=store, overrides=irt_overrides)
    try:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            headers = await _signed_in(client, 8002)
            assert (await client.post("/dev/contact", headers=headers)).status == 404
    finally:
        await teller.stop()


def test_a_production_process_never_imports_the_dev_contact_or_the_sandbox_people(tmp_path: Path) -> None:
    probe = ("import sys, asyncio\n"
             "from teller.app import start_teller\n"
             "from teller.config import settings_from_mapping\n"
             "s = settings_from_mapping({'auth': {'bot_token': '1:t', 'jwt_secret': 'j' * 48, 'ops_token': 'o'},"
             " 'database': {'url': 'sqlite:///' + sys.argv[1]},"
             " 'paystar': {'base_url': 'http://127.0.0.1:9', 'application_id': 'a', 'access_password': 'p',"
             " 'refresh_token': 'r'}, 'irt': {'company_iban': 'IR820540102680020817909002', 'account_owner': 'T',"
             " 'bank': 'Parsian', 'card_hash_secret': 'c' * 32}}, environ={})\n"
             "async def main():\n"
             "    t = await start_teller(s)\n"
             "    await t.stop()\n"
             "asyncio.run(main())\n"
             "print(sorted(m for m in sys.modules if m in ('teller.http.dev_identity',"
             " 'teller.payments.sandbox_people', 'teller.payments.sandbox')))\n")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "probe.db")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
