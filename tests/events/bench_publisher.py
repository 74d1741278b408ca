"""Benchmark: JetStreamPublisher against bare nats-py publishers of the same messages, in one run.

Run: .venv/bin/python -m tests.events.bench_publisher (needs NATS at 127.0.0.1:4222). Medians of
ROUNDS rounds; each figure is printed as a ratio to the bare pipelined publisher measured in the
same run, with its target and PASS/MISS. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import nats

from teller.events import Event, EventType, JetStreamPublisher

EVENTS_PER_ROUND = 4000
SYNC_EVENTS_PER_ROUND = 1000  # awaiting each ack is slow; fewer keep the run short
BATCH = 1000
ROUNDS = 5
URL = "nats://127.0.0.1:4222"


def _events(tag: str, count: int) -> list[Event]:
    return [Event(id=f"{tag}-{i}", type=EventType.DEPOSIT_CREDITED, user_id="u1",
                  payload={"asset": "USDT", "chain": "ethereum", "amount": "12.5", "tx_hash": f"0x{i:x}"})
            for i in range(count)]


async def _ours(publisher: JetStreamPublisher, events: list[Event]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        assert (await publisher.publish_batch(events[i:i + BATCH])).complete
    return len(events) / (time.perf_counter() - started)


async def _bare_pipelined(js, prefix: str, events: list[Event]) -> float:
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        futures = [await js.publish_async(e.subject_under(prefix), e.to_json(), headers={"Nats-Msg-Id": e.id})
                   for e in events[i:i + BATCH]]
        await asyncio.gather(*futures)
    return len(events) / (time.perf_counter() - started)


async def _bare_each_ack(js, prefix: str, events: list[Event]) -> float:
    started = time.perf_counter()
    for e in events:
        await js.publish(e.subject_under(prefix), e.to_json(), headers={"Nats-Msg-Id": e.id})
    return len(events) / (time.perf_counter() - started)


async def main() -> None:
    tag = uuid.uuid4().hex[:8]
    stream, prefix = f"BENCH_{tag}", f"bench{tag}.events"
    nc = await nats.connect(URL)
    js = nc.jetstream(publish_async_max_pending=BATCH)
    publisher = JetStreamPublisher(URL, stream=stream, subject_prefix=prefix)
    await publisher.connect()
    rates: dict[str, list[float]] = {"ours": [], "bare_pipelined": [], "bare_each_ack": []}
    try:
        for rnd in range(ROUNDS):
            rates["ours"].append(await _ours(publisher, _events(f"o{rnd}", EVENTS_PER_ROUND)))
            rates["bare_pipelined"].append(await _bare_pipelined(js, prefix, _events(f"a{rnd}", EVENTS_PER_ROUND)))
            rates["bare_each_ack"].append(await _bare_each_ack(js, prefix, _events(f"s{rnd}", SYNC_EVENTS_PER_ROUND)))
    finally:
        await publisher.close()
        await js.delete_stream(stream)
        await nc.close()
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in medians.items():
        print(f"{name:15s} {rate:8.0f} msg/s  {rate / medians['bare_pipelined']:4.2f}x of bare pipelined")
    for label, ratio, target in (
        ("JetStreamPublisher / bare pipelined", medians["ours"] / medians["bare_pipelined"], 0.7),
        ("JetStreamPublisher / awaiting each ack", medians["ours"] / medians["bare_each_ack"], 3.0),
    ):
        print(f"{label}: {ratio:.2f}x  target >= {target}x  {'PASS' if ratio >= target else 'MISS'}")


if __name__ == "__main__":
    asyncio.run(main())
