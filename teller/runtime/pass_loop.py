"""PassLoopActor: an actor that runs one of its own methods, a "pass", over and over.

Each pass is asked of the actor through its own mailbox, so a pass never overlaps another message
and callers (ops, tests) get served between passes. An expected error ends the pass as a failure and
the loop goes on; anything else has crashed the actor, and the loop ends with it (the restarted
instance starts its own loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

from teller.runtime.actor import AsyncioActor, Call

__all__ = ["PassLoopActor"]


class PassLoopActor(AsyncioActor):
    pass_method: str = "run_pass"  # the method each pass calls, with no arguments

    _pass_loop: asyncio.Task[None] | None = None

    def on_start(self) -> None:
        self._pass_loop = asyncio.get_running_loop().create_task(self._run_passes())

    def on_stop(self) -> None:
        self._end_pass_loop()

    def on_failure(self, *_exc: Any) -> None:
        self._end_pass_loop()

    def delay_after(self, result: Any, failures: int) -> float:
        """Seconds to wait before the next pass: ``result`` is what the last pass returned (None if it
        failed), ``failures`` how many passes in a row have failed."""
        raise NotImplementedError

    def _end_pass_loop(self) -> None:
        if self._pass_loop is not None:
            self._pass_loop.cancel()
            self._pass_loop = None

    async def _run_passes(self) -> None:
        failures = 0
        while True:
            try:
                result = await self.actor_ref.ask(Call(self.pass_method, (), {}), block=False)
                failures = 0
            except self.expected_errors:
                result, failures = None, failures + 1  # the pass logged it
            except Exception:  # noqa: BLE001 - the actor crashed on it and its supervisor restarts it
                return
            await asyncio.sleep(self.delay_after(result, failures))
