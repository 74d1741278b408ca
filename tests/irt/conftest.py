"""IRT flow fixtures: the whole Teller app (IRT on) over the Paystar sandbox, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from teller.app import Teller, start_teller
from teller.config import PaystarSettings
from teller.payments.cards import card_hash, luhn_valid, mask_card
from teller.payments.iban import build_iban
from teller.payments.national_code import national_code_check_digit
from teller.payments.sandbox import SandboxHandle
from teller.payments.sandbox_people import Person
from teller.storage.owners import Owners
from teller.storage.store import Write, utc_now
from tests.fixtures.http import BOT_TOKEN, OPS_TOKEN, settings_for_tests
from tests.fixtures.initdata import sign_contact, sign_init_data
from tests.fixtures.teller_app import wait_for

POLL_INTERVAL_S = 0.05
CARD_HASH_SECRET = "c" * 32  # irt.card_hash_secret of these tests, key id "k1" (the default)
WAIT_S = 15.0
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def make_card(bin6: str, serial: int) -> str:
    """A Luhn-valid 16-digit card number with this BIN."""
    body = bin6 + f"{serial:09d}"
    for check in range(10):
        if luhn_valid(body + str(check)):
            return body + str(check)
    raise AssertionError("unreachable")


def person_for(serial: int, *, cards: tuple[str, ...] = (), ibans: tuple[str, ...] = (),
               name: str = "Test Person") -> Person:
    """A sandbox person with a national code and a mobile unique to ``serial``, holding these cards and IBANs."""
    head = f"{serial % 10**8:08d}7"  # the trailing 7 keeps ten equal digits impossible for small serials
    return Person(national_code=head + str(national_code_check_digit(head)), mobile=f"099{serial % 10**8:08d}",
                  name=name, cards=cards, ibans=ibans)


def make_iban(serial: int, *, bank_code: str = "012") -> str:
    return build_iban(bank_code=bank_code, account=f"{serial:019d}")


async def seed_verified_owner(store: Any, *, user_id: int, card_number: str, key_id: str = "k1",
                              secret: str = CARD_HASH_SECRET) -> None:
    """Straight into the database (a test of a process that never served the identity routes): a verified
    identity for ``user_id`` and ``card_number`` bound to it, hashed under ``secret`` as ``key_id``."""
    person = person_for(user_id + 500_000)
    now = utc_now()
    await store.run_atomic([
        Write("INSERT INTO identities (user_id, mobile, national_code, status, contact_at, verified_at, updated_at)"
              " VALUES (?, ?, ?, 'verified', ?, ?, ?)", (user_id, person.mobile, person.national_code, now, now, now)),
        Owners.insert_card(user_id=user_id, card_hash=card_hash(card_number, secret=secret.encode()), key_id=key_id,
                           card_masked=mask_card(card_number), iban=make_iban(user_id), owner_name=None, bank=None),
    ])


async def until(predicate: Callable[[], Awaitable[Any]], *, timeout_s: float = WAIT_S) -> Any:
    """Poll ``predicate`` until it returns something truthy (bounded)."""
    return await wait_for(predicate, timeout_s=timeout_s)


@dataclass
class IrtApp:
    teller: Teller
    client: TestClient
    sandbox: SandboxHandle
    store: Any

    async def user(self, telegram_id: int) -> tuple[int, dict[str, str]]:
        response = await self.client.post("/api/v1/auth/telegram",
                                          json={"init_data": sign_init_data(BOT_TOKEN, telegram_id=telegram_id)})
        assert response.status == 200, await response.text()
        body = await response.json()
        return int(body["user"]["id"]), {"Authorization": f"Bearer {body['token']}"}

    async def verified_user(self, telegram_id: int, *, cards: tuple[str, ...] = (), ibans: tuple[str, ...] = (),
                            ) -> tuple[int, dict[str, str], Person]:
        """A user who is a sandbox person holding ``cards`` and ``ibans``, with a verified identity."""
        person = person_for(telegram_id, cards=cards, ibans=ibans)
        self.sandbox.state.add_person(person)
        uid, headers = await self.user(telegram_id)
        await self.verify(headers, telegram_id, person)
        return uid, headers, person

    async def verify(self, headers: dict[str, str], telegram_id: int, person: Person) -> None:
        contact = sign_contact(BOT_TOKEN, user_id=telegram_id, phone_number="+98" + person.mobile[1:])
        shared = await self.client.post("/api/v1/identity/contact", json={"contact": contact}, headers=headers)
        assert shared.status == 200, await shared.text()
        verified = await self.client.post("/api/v1/identity/national-code",
                                          json={"national_code": person.national_code}, headers=headers)
        assert verified.status == 200, await verified.text()
        assert (await verified.json())["status"] == "verified"

    async def irt_balance(self, user_id: int) -> int:
        for balance in await self.store.ledger.balances(user_id):
            if balance.asset == "IRT":
                return int(balance.available_minor)
        return 0

    async def account(self, name: str) -> dict[str, int]:
        return await self.store.ledger.account(name)

    async def count(self, table: str) -> int:
        row = await self.store.fetch_one(f"SELECT COUNT(*) AS n FROM {table}")
        return int(row["n"])

    async def events(self, event_type: str) -> list[dict[str, Any]]:
        import json
        rows = await self.store.fetch_all("SELECT payload FROM outbox WHERE type = ? ORDER BY id", event_type)
        return [json.loads(r["payload"]) for r in rows]

    async def line_status(self, bank_reference: str) -> str | None:
        row = await self.store.fetch_one("SELECT status FROM statement_lines WHERE bank_reference = ?",
                                         bank_reference)
        return None if row is None else str(row["status"])


def irt_settings(paystar: PaystarSettings, **irt: Any) -> Any:
    return settings_for_tests(
        chains=[],
        paystar={"base_url": paystar.base_url, "application_id": paystar.application_id,
                 "access_password": paystar.access_password, "refresh_token": paystar.refresh_token,
                 "timeout_s": paystar.timeout_s, "retries_max": paystar.retries_max},
        irt={"statement_url": paystar.base_url, "statement_poll_interval_s": POLL_INTERVAL_S,
             "card_hash_secret": CARD_HASH_SECRET, **irt},
    )


@pytest.fixture
def irt_overrides(paystar_client: Any, statement_source: Any) -> dict[str, Any]:
    return {"paystar": paystar_client, "statement_source": statement_source, "statement_page_max": 5}


@asynccontextmanager
async def running_irt_app(store: Any, sandbox: SandboxHandle, paystar_settings: PaystarSettings,
                          overrides: dict[str, Any], **irt: Any) -> AsyncIterator[IrtApp]:
    """A Teller with IRT on (``irt`` overrides its [irt] keys) served on loopback; invariants checked after."""
    teller = await start_teller(irt_settings(paystar_settings, **irt), store=store, overrides=overrides)
    client = TestClient(TestServer(teller.app, host="127.0.0.1"))
    try:
        await client.start_server()
        yield IrtApp(teller=teller, client=client, sandbox=sandbox, store=store)
    finally:
        await client.close()
        await teller.stop()
    assert await store.ledger.check_invariants() == []


@pytest.fixture
async def irt_app(store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
                  irt_overrides: dict[str, Any], log_stream: Any) -> AsyncIterator[IrtApp]:
    async with running_irt_app(store, paystar_sandbox, paystar_settings, irt_overrides) as app:
        yield app
