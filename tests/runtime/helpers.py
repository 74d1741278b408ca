"""Small actors and waits shared by the runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from teller.runtime import AsyncioActor


class Boom(Exception):
    """An unexpected error (a bug): the actor restarts."""


class Declined(Exception):
    """An expected (domain) error: the caller gets it, the actor keeps going."""


async def until(predicate: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
    """Wait for a condition (a deadline only to fail a hung test, not to assert timing)."""
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.001)


class Recorder(AsyncioActor):
    """Counts messages, records its lifecycle in a shared journal, crashes on request."""

    expected_errors = (Declined,)

    def __init__(self, name: str, journal: list[str], *, fail_start: list[bool] | None = None) -> None:
        super().__init__()
        self.name = name
        self.journal = journal
        self.fail_start = fail_start
        self.count = 0

    def on_start(self) -> None:
        self.journal.append(f"start {self.name}")
        if self.fail_start and self.fail_start.pop(0):
            raise Boom(f"{self.name} cannot start")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.name}")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise Boom(f"{self.name} crashed")
        if message == "decline":
            raise Declined("no")
        if message == "exit":
            raise SystemExit(3)
        self.count += 1
        return (self.name, self.count)

    def get_count(self) -> int:
        return self.count

    async def slow_add(self, a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b
