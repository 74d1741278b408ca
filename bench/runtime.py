"""Runtime benchmark: every figure as a ratio to a baseline measured in this same run.

Run: ``python bench/runtime.py``. Medians of a few short rounds; the machine is noisy, read ratios.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pykka  # noqa: E402
import structlog  # noqa: E402

from teller.runtime import AsyncioActor, Backoff, ChildSpec, Intensity, KeyedSpec, SupervisorSpec, start_tree  # noqa: E402

ROUNDS = 5
ASKS_PER_ROUND = 20_000
TELLS_PER_ROUND = 5_000  # below the default mailbox bound
KEYS = 100_000
LOOKUPS = 200_000
CRASHES = 2_000


class PykkaEcho(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class Echo(AsyncioActor):
    mailbox_max = 20_000
    expected_errors = ()

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crash")
        return message


class Wallet(AsyncioActor):
    def __init__(self, key: Any) -> None:
        super().__init__()
        self.key = key

    def on_receive(self, message: Any) -> Any:
        return message


def median_rate(samples: list[float]) -> float:
    return statistics.median(samples)


def pykka_asks() -> float:
    ref = PykkaEcho.start()
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(ASKS_PER_ROUND // 4):
            ref.ask(i)
        rates.append((ASKS_PER_ROUND // 4) / (time.perf_counter() - start))
    tell_rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(TELLS_PER_ROUND):
            ref.tell(i)
        ref.ask(0)
        tell_rates.append(TELLS_PER_ROUND / (time.perf_counter() - start))
    ref.stop()
    return median_rate(rates), median_rate(tell_rates)  # type: ignore[return-value]


async def raw_queue_asks() -> float:
    queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()

    async def worker() -> None:
        while True:
            message, future = await queue.get()
            future.set_result(message)

    task = asyncio.create_task(worker())
    loop = asyncio.get_running_loop()
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(ASKS_PER_ROUND):
            future = loop.create_future()
            queue.put_nowait((i, future))
            await future
        rates.append(ASKS_PER_ROUND / (time.perf_counter() - start))
    task.cancel()
    return median_rate(rates)


async def actor_asks_and_tells() -> tuple[float, float, float]:
    tree = await start_tree(SupervisorSpec(name="bench", children=(ChildSpec(name="echo", factory=Echo),)))
    handle = tree.handle("echo")
    ref = handle.actor.actor_ref  # type: ignore[union-attr]
    ref_rates, handle_rates, tell_rates = [], [], []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(ASKS_PER_ROUND):
            await ref.ask(i, block=False)
        ref_rates.append(ASKS_PER_ROUND / (time.perf_counter() - start))
        start = time.perf_counter()
        for i in range(ASKS_PER_ROUND):
            await handle.ask(i)
        handle_rates.append(ASKS_PER_ROUND / (time.perf_counter() - start))
        start = time.perf_counter()
        for i in range(TELLS_PER_ROUND):
            handle.tell(i)
        await handle.ask(0)
        tell_rates.append(TELLS_PER_ROUND / (time.perf_counter() - start))
    await tree.stop()
    return median_rate(ref_rates), median_rate(handle_rates), median_rate(tell_rates)


async def crash_to_answer() -> float:
    tree = await start_tree(
        SupervisorSpec(
            name="bench",
            children=(ChildSpec(name="echo", factory=Echo),),
            intensity=Intensity(restarts_max=CRASHES * 2, period_s=3600),
            backoff=Backoff(base_s=0.0, max_s=0.0, jitter=0.0),  # measure the restart path, not the policy
        )
    )
    # The crash log line (with its traceback) is not what is measured: keep it out of the way.
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    handle = tree.handle("echo")
    samples = []
    for _ in range(CRASHES):
        start = time.perf_counter()
        try:
            await handle.ask("crash")
        except RuntimeError:
            pass
        await handle.ask("ok")
        samples.append(time.perf_counter() - start)
    await tree.stop()
    return statistics.median(samples)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def keyed_activation() -> tuple[float, float, float]:
    spec = KeyedSpec(name="wallets", factory=Wallet, live_max=KEYS + 1, idle_timeout_s=3600)
    tree = await start_tree(SupervisorSpec(name="bench", children=(spec,)))
    keyed = tree.keyed("wallets")
    gc.collect()
    rss_before = rss_mb()
    start = time.perf_counter()
    for key in range(KEYS):
        keyed.handle_for(key)
        if key % 1_000 == 999:
            await asyncio.sleep(0)  # let the fresh actors run their on_start
    await keyed.handle_for(KEYS - 1).ask("ping")
    activation_s = time.perf_counter() - start
    rss_used = rss_mb() - rss_before
    handle_for = keyed.handle_for
    start = time.perf_counter()
    for i in range(LOOKUPS):
        handle_for(i % KEYS)
    lookup_us = (time.perf_counter() - start) / LOOKUPS * 1e6
    await tree.stop()
    return activation_s, rss_used, lookup_us


def line(label: str, figure: str, target: str, ok: bool) -> None:
    print(f"{label:<44} {figure:>22}   target {target:<16} {'PASS' if ok else 'MISS'}")


async def main() -> None:
    pykka_ask, pykka_tell = await asyncio.to_thread(pykka_asks)
    raw = await raw_queue_asks()
    ref_ask, handle_ask, tell = await actor_asks_and_tells()
    activation_s, rss_used, lookup_us = await keyed_activation()
    crash_s = await crash_to_answer()
    print(f"baselines: pykka ThreadingActor ask {pykka_ask:,.0f}/s, tell {pykka_tell:,.0f}/s; "
          f"raw asyncio Queue+future round trip {raw:,.0f}/s")
    line("ask round trip (ActorRef) vs pykka", f"{ref_ask / pykka_ask:.2f}x ({ref_ask:,.0f}/s)", ">= 2.5x", ref_ask / pykka_ask >= 2.5)
    line("ask round trip (ActorRef) vs raw Queue+future", f"{ref_ask / raw:.2f}x", ">= 0.75x", ref_ask / raw >= 0.75)
    line("ask round trip (Handle) vs pykka", f"{handle_ask / pykka_ask:.2f}x ({handle_ask:,.0f}/s)", ">= 2.5x", handle_ask / pykka_ask >= 2.5)
    line("ask round trip (Handle) vs raw Queue+future", f"{handle_ask / raw:.2f}x", ">= 0.75x", handle_ask / raw >= 0.75)
    line("tell (Handle) vs pykka", f"{tell / pykka_tell:.2f}x ({tell:,.0f}/s)", ">= 2x", tell / pykka_tell >= 2.0)
    line(f"{KEYS:,} keyed actors activated", f"{activation_s:.2f} s", "< 3 s", activation_s < 3.0)
    line(f"{KEYS:,} keyed actors RSS", f"{rss_used:.0f} MB ({rss_used * 1024 / KEYS:.1f} KB each)", "< 600 MB", rss_used < 600)
    line("live-key lookup (handle_for)", f"{lookup_us:.2f} us", "< 5 us", lookup_us < 5.0)
    line("crash to first good answer (median)", f"{crash_s * 1e6:.0f} us", "< 100 us", crash_s < 100e-6)


if __name__ == "__main__":
    asyncio.run(main())
