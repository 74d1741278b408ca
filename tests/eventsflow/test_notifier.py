"""Notifier: 429 waited out, 403 not retried, one message per event even when a send was cut off."""

from __future__ import annotations

from typing import Any

from teller.actors import notifier as notifier_module
from teller.storage import Event
from teller.storage.notifications import Notifications
from teller.telegram.botapi_server import BotApiServer
from tests.eventsflow.helpers import backlog, credit_deposit, running_teller, until

TG = 5151


async def _status_of(store: Any, event_id: int) -> str | None:
    record = await Notifications(store).get(event_id)
    return None if record is None else record.status


async def _only_event_id(store: Any) -> int:
    [row] = await store.fetch_all("SELECT id FROM outbox")
    return int(row["id"])


async def test_a_429_is_waited_out_and_the_message_goes_once(store: Any, botapi: BotApiServer) -> None:
    botapi.fail(TG, status=429, retry_after_s=1)
    async with running_teller(store, botapi=botapi):
        await credit_deposit(store, telegram_id=TG)
        event_id = await _only_event_id(store)

        async def sent() -> bool:
            return await _status_of(store, event_id) == "sent"

        await until(sent, what="sent after the 429")
        assert len(botapi.sent_messages(TG)) == 1
        assert len(botapi.calls_of("sendMessage")) == 2  # the refused one, then the real one


async def test_a_user_who_blocked_the_bot_is_recorded_and_not_retried(store: Any, botapi: BotApiServer) -> None:
    botapi.block(TG)
    async with running_teller(store, botapi=botapi):
        await credit_deposit(store, telegram_id=TG)
        event_id = await _only_event_id(store)

        async def blocked() -> bool:
            return await _status_of(store, event_id) == "blocked" and await backlog(store) == 0

        await until(blocked, what="recorded as blocked")
        assert len(botapi.calls_of("sendMessage")) == 1 and botapi.sent_messages() == []


async def test_an_event_claimed_before_a_crash_is_never_sent_again(store: Any, botapi: BotApiServer) -> None:
    user_id = await credit_deposit(store, telegram_id=TG)
    event_id = await _only_event_id(store)
    # A previous notifier claimed it and died before recording the outcome.
    assert await Notifications(store).claim(event_id, user_id=user_id, telegram_id=TG)
    await credit_deposit(store, telegram_id=TG, tx_hash="0xdef")  # a later event still goes out
    async with running_teller(store, botapi=botapi):
        await botapi.wait_for_messages(1, chat_id=TG)

        async def drained() -> bool:
            return await backlog(store) == 0

        await until(drained, what="both delivered")
        assert len(botapi.sent_messages(TG)) == 1
        assert await _status_of(store, event_id) == "sending"


async def test_events_delivered_but_never_notified_are_caught_up_on_start(store: Any, botapi: BotApiServer) -> None:
    await credit_deposit(store, telegram_id=TG)
    event_id = await _only_event_id(store)
    await store.outbox.mark_delivered([event_id])  # the relay delivered it; the notifier died holding it
    async with running_teller(store, botapi=botapi):
        [message] = await botapi.wait_for_messages(1, chat_id=TG)
        assert message["text"].startswith("✅ Deposit credited")


async def test_an_event_for_an_unknown_user_is_skipped(store: Any, botapi: BotApiServer) -> None:
    await store.outbox.add(Event("card.verified", {"user_id": "999999", "card_masked": "6037****1234"}))
    event_id = await _only_event_id(store)
    async with running_teller(store, botapi=botapi):
        async def skipped() -> bool:
            return await _status_of(store, event_id) == "skipped"

        await until(skipped, what="skipped")
        assert botapi.sent_messages() == []


async def test_claims_are_unique_and_outcomes_final(store: Any) -> None:
    notes = Notifications(store)
    assert await notes.claim(1, user_id=1, telegram_id=TG)
    assert not await notes.claim(1, user_id=1, telegram_id=TG)
    await notes.finish(1, "sent")
    await notes.finish(1, "failed")  # a finished record is never rewritten
    record = await notes.get(1)
    assert record is not None and record.status == "sent"
    assert not await notes.record(1, "skipped")


async def test_every_lost_event_is_caught_up_not_only_the_first_page(store: Any, botapi: BotApiServer,
                                                                     monkeypatch: Any) -> None:
    monkeypatch.setattr(notifier_module, "CATCH_UP_PAGE_MAX", 2)
    users = [TG + i for i in range(5)]
    for i, telegram_id in enumerate(users):
        await credit_deposit(store, telegram_id=telegram_id, tx_hash=f"0x{i:03x}")
    ids = [int(r["id"]) for r in await store.fetch_all("SELECT id FROM outbox")]
    await store.outbox.mark_delivered(ids)  # a stopped notifier's mailbox held them all
    async with running_teller(store, botapi=botapi):
        for telegram_id in users:
            [message] = await botapi.wait_for_messages(1, chat_id=telegram_id)
            assert message["text"].startswith("✅ Deposit credited")
