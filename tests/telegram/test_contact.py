"""The bot's contact handler over a local Bot API (long polling), recording into a real store.

Only the sender's own contact in their private chat is recorded; a foreign contact is refused with
an answer, a group's is ignored, a replayed message records the same thing again (harmless), and
the phone number never reaches the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot

from teller.assets import AssetRegistry
from teller.flows.base import AppContext
from teller.flows.events import _claim_update, _contact_recorder
from teller.storage.bot_updates import BotUpdates
from teller.telegram.bot import build_dispatcher, run_polling
from teller.telegram.botapi_server import BotApiServer
from teller.telegram.contact import FOREIGN_TEXT, RECORDED_TEXT, REFUSED_TEXT
from tests.fixtures.http import settings_for_tests

MOBILE = "989121234567"


async def no_balances(telegram_id: int) -> list[Any]:
    return []


@pytest.fixture
async def polling(botapi: BotApiServer, tg_bot: Bot, store: Any) -> AsyncIterator[None]:
    ctx = AppContext(settings=settings_for_tests(chains=[]), store=store, assets=AssetRegistry(()))
    dispatcher = build_dispatcher(balances_for=no_balances, claim_update=_claim_update(BotUpdates(store)),
                                  record_contact=_contact_recorder(ctx))
    task = asyncio.create_task(run_polling(tg_bot, dispatcher, polling_timeout_s=1))
    yield
    await dispatcher.stop_polling()
    await task


def _contact_update(*, chat_id: int, from_id: int, contact_user_id: int | None, phone: str = MOBILE,
                    chat_type: str = "private") -> dict[str, Any]:
    contact: dict[str, Any] = {"phone_number": phone, "first_name": "Sara"}
    if contact_user_id is not None:
        contact["user_id"] = contact_user_id
    return {"message": {"message_id": 1, "date": 1_800_000_000, "contact": contact,
                        "from": {"id": from_id, "is_bot": False, "first_name": "Sara"},
                        "chat": {"id": chat_id, "type": chat_type, "title": "g"} if chat_type != "private"
                        else {"id": chat_id, "type": "private", "first_name": "Sara"}}}


async def _identities(store: Any) -> list[dict[str, Any]]:
    return await store.fetch_all("SELECT u.telegram_id, i.mobile, i.status FROM identities i"
                                 " JOIN users u ON u.id = i.user_id ORDER BY u.telegram_id")


async def test_own_contact_is_recorded_once_and_replays_are_harmless(botapi: BotApiServer, polling: None,
                                                                    store: Any, log_stream: Any) -> None:
    for _ in range(2):
        await botapi.inject_update(_contact_update(chat_id=77, from_id=77, contact_user_id=77))
    replies = await botapi.wait_for_messages(2, chat_id=77)
    assert [r["text"] for r in replies] == [RECORDED_TEXT, RECORDED_TEXT]
    assert await _identities(store) == [{"telegram_id": 77, "mobile": "09121234567", "status": "contact_shared"}]
    assert MOBILE not in log_stream.getvalue() and "09121234567" not in log_stream.getvalue()


async def test_foreign_group_and_odd_contacts_record_nothing(botapi: BotApiServer, polling: None, store: Any) -> None:
    await botapi.inject_update(_contact_update(chat_id=78, from_id=78, contact_user_id=99))   # someone else's
    await botapi.inject_update(_contact_update(chat_id=78, from_id=78, contact_user_id=None))  # a typed contact
    await botapi.inject_update(_contact_update(chat_id=79, from_id=79, contact_user_id=79, phone="+14155550100"))
    await botapi.inject_update(_contact_update(chat_id=-100, from_id=80, contact_user_id=80, chat_type="group"))
    foreign = await botapi.wait_for_messages(2, chat_id=78)
    assert [r["text"] for r in foreign] == [FOREIGN_TEXT, FOREIGN_TEXT]
    [not_iranian] = await botapi.wait_for_messages(1, chat_id=79)
    assert not_iranian["text"] == REFUSED_TEXT["invalid_contact"]
    await botapi.inject_update(_contact_update(chat_id=81, from_id=81, contact_user_id=81))  # a marker: all handled
    await botapi.wait_for_messages(1, chat_id=81)
    assert botapi.sent_messages(-100) == []
    assert [r["telegram_id"] for r in await _identities(store)] == [81]
