"""OutboxRelay end to end: outbox rows -> JetStream (real NATS) and the notifier -> the local Bot API."""

from __future__ import annotations

import json
from typing import Any

from teller.events import Event as WireEvent
from teller.storage import Event
from teller.storage.notifications import Notifications
from teller.telegram.botapi_server import BotApiServer
from tests.eventsflow.helpers import backlog, credit_deposit, events_flow, running_teller, stream_messages, until
from tests.fixtures.nats import JetStreamNames, TcpProxy

TG = 4242
CREDITED_TEXT = "✅ Deposit credited: 12.5 USDT on ethereum"


async def test_a_credited_deposit_is_one_stream_message_and_one_telegram_message(
        store: Any, jetstream_names: JetStreamNames, botapi: BotApiServer) -> None:
    async with running_teller(store, names=jetstream_names, botapi=botapi):
        user_id = await credit_deposit(store, telegram_id=TG)
        [row] = await store.fetch_all("SELECT id FROM outbox")
        notes = Notifications(store)

        async def settled() -> bool:
            record = await notes.get(row["id"])
            return await backlog(store) == 0 and record is not None and record.status == "sent"

        await until(settled, what="delivered and notified")
        [message] = await stream_messages(jetstream_names)
        assert message.headers["Nats-Msg-Id"] == f"outbox-{row['id']}"
        assert message.subject == f"{jetstream_names.subject_prefix}.deposit.credited"
        event = WireEvent.from_json(message.data)
        assert (event.user_id, event.payload["amount"], event.payload["asset"]) == (str(user_id), "12.5", "USDT")
        assert [m["text"] for m in botapi.sent_messages(TG)] == [CREDITED_TEXT]


async def test_relay_crashed_after_publishing_loses_nothing_and_sends_one_message_each(
        store: Any, jetstream_names: JetStreamNames, botapi: BotApiServer) -> None:
    crashes = []

    async def crash_once(event: Any) -> None:
        # After the publish acked and the notifier accepted, before the rows are marked delivered.
        if not crashes:
            crashes.append(event.id)
            raise RuntimeError("relay dies mid-batch")

    async with running_teller(store, names=jetstream_names, botapi=botapi) as teller:
        teller.ctx.subscribers.append(crash_once)
        for i in range(3):
            await credit_deposit(store, telegram_id=TG + i, tx_hash=f"0x{i}")

        async def all_sent() -> bool:
            return await backlog(store) == 0 and len(botapi.sent_messages()) >= 3 and not [
                r for r in await store.fetch_all("SELECT status FROM notifications_sent") if r["status"] != "sent"]

        await until(all_sent, what="every event delivered and notified after the crash")
        assert crashes, "the relay did crash"
        assert teller.tree.status()["tree"]  # the tree is still up
        messages = await stream_messages(jetstream_names)
        ids = [m.headers["Nats-Msg-Id"] for m in messages]
        assert len(ids) == 3 and len(set(ids)) == 3  # JetStream dropped the re-published duplicates
        for i in range(3):
            assert [m["text"] for m in botapi.sent_messages(TG + i)] == [CREDITED_TEXT]


async def test_nats_down_grows_the_backlog_without_loss_and_it_drains_when_back(
        store: Any, jetstream_names: JetStreamNames, nats_proxy: TcpProxy, botapi: BotApiServer) -> None:
    await nats_proxy.stop()  # NATS "stopped": the relay's URL answers nothing
    async with running_teller(store, names=jetstream_names, nats_url=nats_proxy.url, botapi=botapi) as teller:
        state = teller.flows and events_flow(teller)
        for i in range(5):
            await credit_deposit(store, telegram_id=TG, tx_hash=f"0x{i}")

        async def down_noticed() -> bool:
            doc = await state.status()
            return doc["events"]["relay"]["connected"] is False and doc["events"]["relay"]["last_error"] is not None

        await until(down_noticed, what="the relay reports NATS down")
        assert await backlog(store) == 5
        assert botapi.sent_messages() == []  # not delivered anywhere until JetStream has it
        await nats_proxy.start()

        async def drained() -> bool:
            return await backlog(store) == 0

        await until(drained, what="the backlog drains once NATS is back")
        doc = await state.status()
        assert doc["events"]["relay"]["connected"] is True and doc["events"]["relay"]["last_error"] is None
        messages = await stream_messages(jetstream_names)
        assert sorted(json.loads(m.data)["payload"]["tx_hash"] for m in messages) == [f"0x{i}" for i in range(5)]
        await botapi.wait_for_messages(5, chat_id=TG)


async def test_a_malformed_row_is_parked_and_does_not_block_the_queue(
        store: Any, jetstream_names: JetStreamNames) -> None:
    await store.outbox.add(Event("deposit.credited", {"user_id": "1", "asset": "USDT"}))  # keys missing
    await store.outbox.add(Event("no.such.type", {"user_id": "1"}))
    await store.outbox.add(Event("card.verified", {"user_id": "1", "card_masked": "x", "note": "é" * 9000}))
    await credit_deposit(store, telegram_id=TG)
    async with running_teller(store, names=jetstream_names) as teller:
        async def good_one_out() -> bool:
            return len(await stream_messages(jetstream_names)) == 1 and (
                await events_flow(teller).status())["events"]["parked"] == 3

        await until(good_one_out, what="the good event published, the bad ones parked")
        rows = await store.fetch_all("SELECT id, parked_reason, delivered_at FROM outbox ORDER BY id")
        assert [r["parked_reason"] is not None for r in rows] == [True, True, True, False]
        assert [r["delivered_at"] is None for r in rows] == [True, True, True, False]  # parked rows are kept
        assert await backlog(store) == 3  # and still counted: ops must look at them


async def test_without_nats_events_go_straight_to_the_notifier(store: Any, botapi: BotApiServer) -> None:
    async with running_teller(store, botapi=botapi) as teller:
        await credit_deposit(store, telegram_id=TG)
        await botapi.wait_for_messages(1, chat_id=TG)

        async def drained() -> bool:
            return await backlog(store) == 0

        await until(drained, what="delivered in-process")
        relay = (await events_flow(teller).status())["events"]["relay"]
        assert relay["nats"] is False and relay["delivered"] == 1
