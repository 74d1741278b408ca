"""Events benchmark: the OutboxRelay and the JetStreamPublisher against a bare nats-py publisher, in one run.

Run: .venv/bin/python bench/events.py (needs NATS at 127.0.0.1:4222). Medians of ROUNDS rounds;
every figure is a ratio to the bare pipelined nats-py publisher of the same messages measured in
the same round, with its target and PASS/MISS:

  A  OutboxRelay, outbox rows (SQLite) -> JetStream -> marked delivered   target >= 0.7x of bare pipelined
  B  JetStreamPublisher.publish_batch                                      target >= 0.7x of bare pipelined
  C  JetStreamPublisher vs bare publishing that awaits each ack            target >= 3x (for information)

The relay figure is end to end: it reads the rows, builds the events, publishes, waits for the
acks and marks the rows delivered, as it does in production (batches of RELAY_BATCH_MAX).
(Moved here from tests/events/bench_publisher.py and extended with the relay.)
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nats  # noqa: E402

from teller.actors.outbox_relay import OutboxRelay, RelayState  # noqa: E402
from teller.events import Event, EventType, JetStreamPublisher  # noqa: E402
from teller.runtime import ChildSpec, SupervisorSpec, start_tree  # noqa: E402
from teller.storage import Event as OutboxEvent  # noqa: E402
from teller.storage import Outbox, open_store  # noqa: E402

EVENTS_PER_ROUND = 4000
SYNC_EVENTS_PER_ROUND = 500  # awaiting each ack is slow; fewer keep the run short
BATCH = 1000
ROUNDS = 5  # medians of 5: single rounds swing 0.5-0.85x on this machine
URL = "nats://127.0.0.1:4222"
ROWS_PER_INSERT = 500
RELAY_DEADLINE_S = 60.0


def _payload(i: int) -> dict[str, str]:
    return {"asset": "USDT", "chain": "ethereum", "amount": "12.5", "tx_hash": f"0x{i:x}"}


def _events(tag: str, count: int) -> list[Event]:
    return [Event(id=f"{tag}-{i}", type=EventType.DEPOSIT_CREDITED, user_id="1", payload=_payload(i))
            for i in range(count)]


async def _ours(publisher: JetStreamPublisher, events: list[Event]) -> float:
    gc.collect()  # setup garbage is collected before the clock starts, for every contender alike
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        assert (await publisher.publish_batch(events[i:i + BATCH])).complete
    return len(events) / (time.perf_counter() - started)


async def _bare_pipelined(js, prefix: str, events: list[Event]) -> float:  # type: ignore[no-untyped-def]
    gc.collect()  # setup garbage is collected before the clock starts, for every contender alike
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        futures = [await js.publish_async(e.subject_under(prefix), e.to_json(), headers={"Nats-Msg-Id": e.id})
                   for e in events[i:i + BATCH]]
        await asyncio.gather(*futures)
    return len(events) / (time.perf_counter() - started)


async def _bare_each_ack(js, prefix: str, events: list[Event]) -> float:  # type: ignore[no-untyped-def]
    gc.collect()  # setup garbage is collected before the clock starts, for every contender alike
    started = time.perf_counter()
    for e in events:
        await js.publish(e.subject_under(prefix), e.to_json(), headers={"Nats-Msg-Id": e.id})
    return len(events) / (time.perf_counter() - started)


async def _relay(stream: str, prefix: str, db_dir: str, rnd: int) -> float:
    """Fill a fresh outbox with EVENTS_PER_ROUND rows, then time the relay draining it."""
    store = await open_store(f"sqlite:///{db_dir}/relay{rnd}.db")
    try:
        for start in range(0, EVENTS_PER_ROUND, ROWS_PER_INSERT):
            await store.run_atomic([
                Outbox.write(OutboxEvent("deposit.credited", {"user_id": "1", **_payload(start + i)}))
                for i in range(ROWS_PER_INSERT)])
        publisher = JetStreamPublisher(URL, stream=stream, subject_prefix=prefix)
        await publisher.connect()  # connection set-up is not part of the relay's throughput
        state = RelayState()
        gc.collect()  # setup garbage is collected before the clock starts, for every contender alike
        started = time.perf_counter()
        tree = await start_tree(SupervisorSpec(name="root", children=(ChildSpec(
            name="relay", factory=lambda: OutboxRelay(store=store, publisher=publisher, subscribers=[],
                                                      state=state, poll_interval_s=0.005)),)))
        try:
            async with asyncio.timeout(RELAY_DEADLINE_S):
                while state.delivered < EVENTS_PER_ROUND:
                    await asyncio.sleep(0.002)
            elapsed_s = time.perf_counter() - started
        finally:
            await tree.stop()
            await publisher.close()
        assert (await store.outbox.backlog()).size == 0
        return EVENTS_PER_ROUND / elapsed_s
    finally:
        await store.close()


async def main() -> None:
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"BENCH_{tag}", f"bench{tag}.events"
    nc = await nats.connect(URL)
    js = nc.jetstream(publish_async_max_pending=BATCH)
    publisher = JetStreamPublisher(URL, stream=stream, subject_prefix=prefix)
    await publisher.connect()
    rates: dict[str, list[float]] = {"relay": [], "publisher": [], "bare_pipelined": [], "bare_each_ack": []}
    try:
        with tempfile.TemporaryDirectory() as db_dir:
            for rnd in range(ROUNDS):
                rates["relay"].append(await _relay(stream, prefix, db_dir, rnd))
                rates["publisher"].append(await _ours(publisher, _events(f"o{rnd}", EVENTS_PER_ROUND)))
                rates["bare_pipelined"].append(
                    await _bare_pipelined(js, prefix, _events(f"a{rnd}", EVENTS_PER_ROUND)))
                rates["bare_each_ack"].append(
                    await _bare_each_ack(js, prefix, _events(f"s{rnd}", SYNC_EVENTS_PER_ROUND)))
    finally:
        await publisher.close()
        await js.delete_stream(stream)
        await nc.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians["bare_pipelined"]
    print(f"{EVENTS_PER_ROUND} events per round, {ROUNDS} rounds, medians")
    for name, rate in medians.items():
        print(f"  {name:15s} {rate:8.0f} events/s  {rate / base:4.2f}x of bare pipelined")
    for label, ratio, target in (
        ("A OutboxRelay (rows -> JetStream -> delivered) / bare pipelined", medians["relay"] / base, 0.7),
        ("B JetStreamPublisher / bare pipelined", medians["publisher"] / base, 0.7),
        ("C JetStreamPublisher / awaiting each ack", medians["publisher"] / medians["bare_each_ack"], 3.0),
    ):
        print(f"{label}: {ratio:.2f}x  target >= {target}x  {'PASS' if ratio >= target else 'MISS'}")


if __name__ == "__main__":
    asyncio.run(main())
