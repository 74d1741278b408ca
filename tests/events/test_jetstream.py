"""The JetStream publisher against the real NATS on 127.0.0.1:4222."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
import structlog

from teller.errors import EventsUnavailable
from teller.events import Event, EventType, JetStreamPublisher
from tests.fixtures.common import free_port
from tests.fixtures.nats import JetStreamNames


def _credited(i: int) -> Event:
    return Event(id=f"deposit:ethereum:0x{i:04x}:0", type=EventType.DEPOSIT_CREDITED, user_id=f"u{i % 3}",
                 payload={"asset": "USDT", "chain": "ethereum", "amount": f"{i}.5", "tx_hash": f"0x{i:04x}"})


async def _stream_messages(names: JetStreamNames) -> list[tuple[str, dict, str]]:
    nc = await nats.connect(servers=[names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        info = await js.stream_info(names.stream)
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(names.stream, seq)
            out.append((msg.subject, json.loads(msg.data), msg.headers["Nats-Msg-Id"]))
        return out
    finally:
        await nc.close()


async def test_batch_lands_once_and_republish_is_deduplicated(jetstream_names: JetStreamNames) -> None:
    events = [_credited(i) for i in range(50)]
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                  subject_prefix=jetstream_names.subject_prefix) as publisher:
        first = await publisher.publish_batch(events)
        assert first.complete and first.acked == tuple(e.id for e in events) and not first.duplicates
        # The relay crashed before marking the batch delivered and sends it all again.
        again = await publisher.publish_batch(events[:30] + [_credited(50)])
        assert again.complete and set(again.duplicates) == {e.id for e in events[:30]}

    stored = await _stream_messages(jetstream_names)
    assert [m[2] for m in stored] == [e.id for e in events] + [_credited(50).id]
    subject, body, _ = stored[0]
    assert subject == f"{jetstream_names.subject_prefix}.deposit.credited"
    assert Event.from_json(json.dumps(body)) == events[0]


async def test_stream_is_created_when_missing_and_reused_when_present(jetstream_names: JetStreamNames) -> None:
    for _ in range(2):  # two processes starting one after the other
        async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                      subject_prefix=jetstream_names.subject_prefix) as publisher:
            await publisher.connect()
    nc = await nats.connect(servers=[jetstream_names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().stream_info(jetstream_names.stream)
        assert info.config.subjects == [f"{jetstream_names.subject_prefix}.>"]
    finally:
        await nc.close()


async def test_closed_port_raises_events_unavailable_quickly() -> None:
    publisher = JetStreamPublisher(f"nats://127.0.0.1:{free_port()}", connect_timeout_s=0.5)
    # The bound is the test's own timeout: nothing may hang on a dead NATS.
    with pytest.raises(EventsUnavailable) as info:
        await asyncio.wait_for(publisher.publish_batch([_credited(1)]), timeout=15)
    assert info.value.code == "events_unavailable"
    # And again: the publisher stays usable and keeps answering rather than hanging.
    with pytest.raises(EventsUnavailable):
        await asyncio.wait_for(publisher.publish_batch([_credited(1)]), timeout=15)
    await publisher.close()


async def test_empty_batch_is_a_no_op_without_connecting() -> None:
    publisher = JetStreamPublisher(f"nats://127.0.0.1:{free_port()}")
    result = await publisher.publish_batch([])
    assert result.acked == () and result.complete


async def test_oversized_batch_is_refused(jetstream_names: JetStreamNames) -> None:
    from teller.events import PUBLISH_BATCH_MAX
    publisher = JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                   subject_prefix=jetstream_names.subject_prefix)
    with pytest.raises(ValueError):
        await publisher.publish_batch([_credited(i) for i in range(PUBLISH_BATCH_MAX + 1)])


async def test_nats_down_then_back_without_a_new_publisher(jetstream_names: JetStreamNames, nats_proxy) -> None:
    publisher = JetStreamPublisher(nats_proxy.url, stream=jetstream_names.stream,
                                   subject_prefix=jetstream_names.subject_prefix,
                                   connect_timeout_s=1.0, ack_timeout_s=1.0)
    try:
        assert (await publisher.publish_batch([_credited(1)])).complete
        await nats_proxy.stop()
        for _ in range(2):  # down: every call fails with the Teller error, none hangs
            with pytest.raises(EventsUnavailable):
                await asyncio.wait_for(publisher.publish_batch([_credited(2)]), timeout=15)
        await nats_proxy.start()
        result = await asyncio.wait_for(publisher.publish_batch([_credited(2), _credited(3)]), timeout=15)
        assert result.complete
    finally:
        await publisher.close()
    assert [m[2] for m in await _stream_messages(jetstream_names)] == [_credited(i).id for i in (1, 2, 3)]


async def test_a_stream_that_misses_our_subjects_is_refused(jetstream_names: JetStreamNames) -> None:
    nc = await nats.connect(servers=[jetstream_names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().add_stream(name=jetstream_names.stream, subjects=[f"{jetstream_names.subject_prefix}.x"])
    finally:
        await nc.close()
    publisher = JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                   subject_prefix=jetstream_names.subject_prefix)
    with pytest.raises(EventsUnavailable):
        await publisher.publish_batch([_credited(1)])
    await publisher.close()


async def test_only_acknowledged_events_are_reported_as_published(jetstream_names: JetStreamNames) -> None:
    from nats.js.api import DiscardPolicy, StreamConfig

    # A full stream refusing new messages: JetStream answers the last two with errors, not acks.
    nc = await nats.connect(servers=[jetstream_names.url], connect_timeout=2, max_reconnect_attempts=0)
    try:
        await nc.jetstream().add_stream(StreamConfig(
            name=jetstream_names.stream, subjects=[f"{jetstream_names.subject_prefix}.>"],
            max_msgs=3, discard=DiscardPolicy.NEW))
    finally:
        await nc.close()
    events = [_credited(i) for i in range(5)]
    # nats-py 2.16 raises inside its reply callback on a 503-class error instead of failing the
    # future, so those futures only end at our ack timeout: the bound is what saves the relay here.
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                  subject_prefix=jetstream_names.subject_prefix, ack_timeout_s=1.0) as publisher:
        result = await publisher.publish_batch(events)
    assert result.acked == tuple(e.id for e in events[:3])
    assert result.failed == tuple(e.id for e in events[3:]) and not result.complete


async def test_closing_is_no_disconnection_but_a_dropped_connection_is(
        jetstream_names: JetStreamNames, nats_proxy) -> None:
    # nats-py runs the disconnected callback from close() too: every clean shutdown (and every
    # bench round) used to log a "nats.disconnected" warning that cried wolf.
    with structlog.testing.capture_logs() as logs:
        async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                      subject_prefix=jetstream_names.subject_prefix) as publisher:
            assert (await publisher.publish_batch([_credited(1)])).complete
    assert [e for e in logs if e["event"] == "nats.disconnected"] == []

    publisher = JetStreamPublisher(nats_proxy.url, stream=jetstream_names.stream,
                                   subject_prefix=jetstream_names.subject_prefix, ack_timeout_s=1.0)
    with structlog.testing.capture_logs() as logs:
        try:
            await publisher.connect()
            await nats_proxy.stop()  # NATS goes away under a live connection

            async def dropped() -> None:
                while not [e for e in logs if e["event"] == "nats.disconnected"]:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(dropped(), timeout=10)
        finally:
            await publisher.close()
    assert [e["log_level"] for e in logs if e["event"] == "nats.disconnected"] == ["warning"]


async def test_sent_batches_overlap_and_are_bounded_together(jetstream_names: JetStreamNames) -> None:
    from teller.events import PUBLISH_BATCH_MAX
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                  subject_prefix=jetstream_names.subject_prefix) as publisher:
        first = await publisher.send_batch([_credited(i) for i in range(PUBLISH_BATCH_MAX // 2)])
        second = await publisher.send_batch([_credited(i) for i in range(PUBLISH_BATCH_MAX // 2, PUBLISH_BATCH_MAX)])
        assert first.in_flight + second.in_flight == PUBLISH_BATCH_MAX
        # A third would wait on nats-py's semaphore, which only those acks could free: refused.
        with pytest.raises(ValueError):
            await publisher.send_batch([_credited(PUBLISH_BATCH_MAX)])
        assert (await first.result()).acked == tuple(_credited(i).id for i in range(PUBLISH_BATCH_MAX // 2))
        third = await publisher.send_batch([_credited(PUBLISH_BATCH_MAX)])  # room again
        assert (await second.result()).complete and (await third.result()).complete
    assert [m[2] for m in await _stream_messages(jetstream_names)] == [
        _credited(i).id for i in range(PUBLISH_BATCH_MAX + 1)]


async def test_an_abandoned_or_forgotten_batch_frees_its_room(jetstream_names: JetStreamNames) -> None:
    from teller.events import PUBLISH_BATCH_MAX
    async with JetStreamPublisher(jetstream_names.url, stream=jetstream_names.stream,
                                  subject_prefix=jetstream_names.subject_prefix, ack_timeout_s=0.2) as publisher:
        given_up = await publisher.send_batch([_credited(i) for i in range(PUBLISH_BATCH_MAX)])
        given_up.abandon()
        assert given_up.in_flight == 0
        forgotten = await publisher.send_batch([_credited(i) for i in range(PUBLISH_BATCH_MAX)])
        await asyncio.sleep(0.3)  # past its ack timeout, and nobody awaited it
        later = await publisher.send_batch([_credited(PUBLISH_BATCH_MAX)])  # not refused: it was given up
        assert forgotten.in_flight == 0 and (await later.result()).complete
