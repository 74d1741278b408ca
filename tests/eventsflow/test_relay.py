"""OutboxRelay end to end: outbox rows -> JetStream (real NATS) and the notifier -> the local Bot API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from teller.actors.outbox_relay import OutboxRelay, RelayState
from teller.events import Event as WireEvent
from teller.events import JetStreamPublisher, SentBatch
from teller.runtime import ChildSpec, MailboxFull, SupervisorSpec, start_tree
from teller.storage import Event, utc_now
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


# -- the pipeline: a relay alone, its batches two deep -------------------------------------------------

class _JournalingPublisher(JetStreamPublisher):
    """The real publisher, noting each batch it sends (and, through ``on_send``, acting meanwhile)."""

    def __init__(self, names: JetStreamNames, journal: list[tuple[str, list[int]]],
                 on_send: Callable[[list[int]], Awaitable[None]] | None = None) -> None:
        super().__init__(names.url, stream=names.stream, subject_prefix=names.subject_prefix)
        self._journal = journal
        self._on_send = on_send

    async def send_batch(self, events: Sequence[WireEvent]) -> SentBatch:
        ids = [int(e.id.removeprefix("outbox-")) for e in events]
        self._journal.append(("send", ids))
        if self._on_send is not None:
            await self._on_send(ids)
        return await super().send_batch(events)


@asynccontextmanager
async def _relay(store: Any, publisher: JetStreamPublisher, *, batch_max: int,
                 subscribers: Sequence[Any] = ()) -> AsyncIterator[RelayState]:
    state = RelayState()
    tree = await start_tree(SupervisorSpec(name="root", children=(ChildSpec(
        name="relay", factory=lambda: OutboxRelay(store=store, publisher=publisher, subscribers=list(subscribers),
                                                  state=state, poll_interval_s=0.02, batch_max=batch_max,
                                                  backoff_max_s=0.05)),)))
    try:
        yield state
    finally:
        await tree.stop()
        await publisher.close()


def _journal_marks(store: Any, journal: list[tuple[str, list[int]]], monkeypatch: pytest.MonkeyPatch) -> None:
    mark_delivered = store.outbox.mark_delivered

    async def marking(ids: Sequence[int]) -> int:
        journal.append(("mark", list(ids)))
        return await mark_delivered(ids)

    monkeypatch.setattr(store.outbox, "mark_delivered", marking)


async def _add_rows(store: Any, count: int) -> list[int]:
    for i in range(count):
        await store.outbox.add(Event("deposit.credited", {"user_id": "1", "asset": "USDT", "chain": "ethereum",
                                                          "amount": "1", "tx_hash": f"0x{i}"}))
    return [r["id"] for r in await store.fetch_all("SELECT id FROM outbox ORDER BY id")]


async def test_a_full_batch_stays_in_flight_while_the_next_is_read_and_sent(
        store: Any, jetstream_names: JetStreamNames, monkeypatch: pytest.MonkeyPatch) -> None:
    journal: list[tuple[str, list[int]]] = []
    _journal_marks(store, journal, monkeypatch)
    a, b, c, d, e = await _add_rows(store, 5)
    async with _relay(store, _JournalingPublisher(jetstream_names, journal), batch_max=2):
        await until(lambda: _backlog_is(store, 0), what="all delivered")
    # Each batch is sent before the one ahead of it is marked, and marked only after its own acks;
    # the marks keep the order of the reads. (Before: send, mark, send, mark, ...)
    assert journal == [("send", [a, b]), ("send", [c, d]), ("mark", [a, b]),
                       ("send", [e]), ("mark", [c, d]), ("mark", [e])]
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages(jetstream_names)] == [
        f"outbox-{i}" for i in (a, b, c, d, e)]


async def test_a_refusal_gives_up_the_batch_sent_behind_it_and_order_holds(
        store: Any, jetstream_names: JetStreamNames) -> None:
    ids = await _add_rows(store, 5)
    seen: list[int] = []

    async def refuses_the_second_once(event: WireEvent) -> None:
        row_id = int(event.id.removeprefix("outbox-"))
        if row_id == ids[1] and ids[1] not in seen and not getattr(refuses_the_second_once, "done", False):
            refuses_the_second_once.done = True  # type: ignore[attr-defined]
            raise MailboxFull("full for now")
        seen.append(row_id)

    async with _relay(store, _JournalingPublisher(jetstream_names, []), batch_max=2,
                      subscribers=[refuses_the_second_once]):
        await until(lambda: _backlog_is(store, 0), what="all delivered after the refusal")
    assert seen == ids  # every event once, in order: nothing behind the refused one overtook it
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages(jetstream_names)] == [
        f"outbox-{i}" for i in ids]  # the re-sent batch was dropped as duplicates


async def test_a_row_committed_late_inside_the_batch_in_flight_is_not_starved(
        store: Any, jetstream_names: JetStreamNames) -> None:
    # PostgreSQL ids come from a sequence: a row may commit after a higher id was read. The read
    # behind a batch in flight leaves out only that batch's id range (not "everything up to it"),
    # so the late row goes out with the next read, not once a busy backlog has run dry.
    event = Event("deposit.credited", {"user_id": "1", "asset": "USDT", "chain": "ethereum", "amount": "1",
                                       "tx_hash": "0x1"})
    for row_id in (10, 12, 14, 15, 16, 17, 18, 19):
        await store.execute("INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)",
                            row_id, event.type, event.payload_json(), utc_now())

    async def commit_late(ids: list[int]) -> None:
        if ids == [10, 12]:
            await store.execute("INSERT INTO outbox (id, type, payload, created_at) VALUES (?, ?, ?, ?)",
                                11, event.type, event.payload_json(), utc_now())

    async with _relay(store, _JournalingPublisher(jetstream_names, [], on_send=commit_late), batch_max=2):
        await until(lambda: _backlog_is(store, 0), what="the late row delivered too")
    assert [m.headers["Nats-Msg-Id"] for m in await stream_messages(jetstream_names)] == [
        f"outbox-{i}" for i in (10, 12, 14, 15, 11, 16, 17, 18, 19)]


async def _backlog_is(store: Any, size: int) -> bool:
    return await backlog(store) == size
