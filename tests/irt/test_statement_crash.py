"""Crash safety of the statement sync: a crash mid-page (in-process, and SIGKILL of a real process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from teller.actors.statement_sync import CURSOR_NAME
from teller.app import start_teller
from teller.config import PaystarSettings
from teller.payments.sandbox import SandboxHandle
from teller.payments.statement import StatementSource
from teller.storage import BANK_IRT
from teller.storage.irt import IrtRepository
from tests.irt.conftest import IrtApp, irt_settings, make_card, seed_verified_owner, until

MELLI = "603799"
CHILD = Path(__file__).with_name("crash_sync.py")
ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_LINES = 5
SIGKILL_LINES = 200  # one page: the kill lands inside it


async def _register(app: IrtApp, headers: dict[str, str], number: str) -> None:
    response = await app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
    assert response.status == 201, await response.text()


async def _stored(app: IrtApp, *refs: str) -> None:
    async def all_stored() -> bool:
        return all([await app.line_status(ref) is not None for ref in refs])
    await until(all_stored)


class _CrashOnce:
    """A statement line whose first read blows up inside the matcher (a bug mid-page), then behaves."""

    crashed = False

    def __init__(self, line: Any) -> None:
        object.__setattr__(self, "_line", line)

    def __getattr__(self, name: str) -> Any:
        if not _CrashOnce.crashed:
            _CrashOnce.crashed = True
            raise RuntimeError("simulated crash in the middle of a page")
        return getattr(object.__getattribute__(self, "_line"), name)


class _CrashingSource(StatementSource):
    def __init__(self, inner: StatementSource, *, crash_at_reference: str) -> None:
        self.inner, self.crash_at = inner, crash_at_reference

    async def fetch(self, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        lines, next_cursor = await self.inner.fetch(cursor, limit)
        return [_CrashOnce(x) if x.bank_reference == self.crash_at else x for x in lines], next_cursor


@pytest.fixture
def irt_overrides(paystar_client: Any, statement_source: Any) -> dict[str, Any]:
    _CrashOnce.crashed = False
    return {"paystar": paystar_client, "statement_page_max": 5,
            "statement_source": _CrashingSource(statement_source, crash_at_reference="PAGE-3")}


async def test_a_crash_mid_page_restarts_the_sync_and_credits_each_line_once(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 9)
    uid, headers, _ = await irt_app.verified_user(2009, cards=(number,))
    await _register(irt_app, headers, number)
    refs = [f"PAGE-{i}" for i in range(1, 8)]  # pages of 5: the crash is on the first page's third line
    for i, ref in enumerate(refs, start=1):
        irt_app.sandbox.state.append_line(amount_rial=1_000 * i, source_card=number, bank_reference=ref)
    await _stored(irt_app, *refs)
    assert _CrashOnce.crashed
    assert await irt_app.irt_balance(uid) == 1_000 * sum(range(1, 8))
    assert len(await irt_app.events("irt.credited")) == 7
    assert (await irt_app.account(BANK_IRT)) is not None
    status = irt_app.teller.tree.status()
    payments = next(n for n in _nodes(status) if n["name"] == "payments")
    assert sum(child["restarts"] for child in payments["children"]) >= 1


def _nodes(status: Any) -> list[dict[str, Any]]:
    doc = status if isinstance(status, dict) else status.as_dict() if hasattr(status, "as_dict") else status
    tree = doc.get("tree", doc)
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.get("children", []))
    return out


async def test_a_sigkilled_sync_resumes_its_page_and_credits_each_line_once(
        store: Any, store_url: str, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings) -> None:
    settings = irt_settings(paystar_settings)
    user = await store.users.get_or_create(telegram_id=3001)
    number = make_card(MELLI, 31)
    await seed_verified_owner(store, user_id=user.id, card_number=number)
    for i in range(SIGKILL_LINES):
        paystar_sandbox.state.append_line(amount_rial=i + 1, source_card=number, bank_reference=f"K-{i}")
    repo = IrtRepository(store)

    async def stored() -> int:
        row = await store.fetch_one("SELECT COUNT(*) AS n FROM statement_lines")
        return int(row["n"])

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), store_url, paystar_settings.base_url, str(SIGKILL_LINES), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await until(lambda: _at_least(stored, KILL_AFTER_LINES), timeout_s=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    killed_at = await stored()
    assert killed_at < SIGKILL_LINES and await repo.cursor(CURSOR_NAME) is None, "the kill landed mid-page"

    teller = await start_teller(settings, store=store, overrides={"statement_page_max": SIGKILL_LINES})
    try:
        await until(lambda: _at_least(stored, SIGKILL_LINES), timeout_s=60)
        await until(lambda: _cursor_set(repo))
    finally:
        await teller.stop()
    balances = {b.asset: b.available_minor for b in await store.ledger.balances(user.id)}
    assert balances["IRT"] == sum(range(1, SIGKILL_LINES + 1))
    transfers = await store.fetch_one("SELECT COUNT(*) AS n FROM transfers WHERE debit = ?", BANK_IRT)
    events = await store.fetch_one("SELECT COUNT(*) AS n FROM outbox WHERE type = 'irt.credited'")
    assert int(transfers["n"]) == SIGKILL_LINES and int(events["n"]) == SIGKILL_LINES
    assert await store.ledger.check_invariants() == []


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count() >= n)


async def _cursor_set(repo: IrtRepository) -> bool:
    return await repo.cursor(CURSOR_NAME) is not None
