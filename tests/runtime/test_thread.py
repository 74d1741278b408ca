from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from teller.runtime import BlockingGetOnLoop, ThreadActor


class Sleeper(ThreadActor):
    def on_receive(self, message: Any) -> Any:
        time.sleep(message)
        return threading.current_thread().name

    def fail(self) -> None:
        raise ValueError("bad")


async def test_thread_actor_blocks_without_stopping_the_loop() -> None:
    ref = Sleeper.start()
    ticks = 0
    stop = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    ticks_before = ticks
    name = await ref.ask(0.5, block=False)
    ticks_during = ticks - ticks_before
    stop.set()
    await beat
    assert name != threading.current_thread().name  # it ran on the actor's own thread
    assert ticks_during >= 10  # ~50 expected; a frozen loop would give 0 or 1
    await ref.stop(block=False)


async def test_thread_actor_errors_and_blocking_get_on_loop() -> None:
    ref = Sleeper.start()
    future = ref.ask(0.05, block=False)
    with pytest.raises(BlockingGetOnLoop):
        future.get()
    await future
    with pytest.raises(ValueError, match="bad"):
        await ref.proxy().fail()


async def test_thread_actor_reached_from_another_thread() -> None:
    ref = Sleeper.start()
    name = await asyncio.to_thread(lambda: ref.ask(0, timeout=5))
    assert name.startswith("Sleeper")
    await ref.stop(block=False)
