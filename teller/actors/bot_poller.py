"""BotPoller: owns the bot's long-polling task (``telegram.mode = "polling"``), so it is supervised.

The task starts with the actor and stops with it. If polling ends on its own (a failure aiogram
did not absorb, e.g. deleteWebhook refused at start), the actor crashes and its supervisor starts
a fresh one after its backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from aiogram import Bot, Dispatcher
from pykka import ActorDeadError

from teller.runtime import AsyncioActor, Call
from teller.telegram.bot import run_polling

__all__ = ["BotPoller", "POLLING_TIMEOUT_S"]

POLLING_TIMEOUT_S = 10
STOP_WAIT_S = 5.0


class BotPoller(AsyncioActor):
    mailbox_max = 4

    def __init__(self, *, make_bot: Callable[[], Bot], make_dispatcher: Callable[[], Dispatcher],
                 polling_timeout_s: int = POLLING_TIMEOUT_S) -> None:
        super().__init__()
        self._make_bot = make_bot
        self._make_dispatcher = make_dispatcher
        self._polling_timeout_s = polling_timeout_s
        self._bot: Bot | None = None
        self._dispatcher: Dispatcher | None = None
        self._polling: asyncio.Task[None] | None = None  # not _task: the runtime's own name
        self._stopping = False

    def on_start(self) -> None:
        self._bot, self._dispatcher = self._make_bot(), self._make_dispatcher()
        self._polling = asyncio.get_running_loop().create_task(
            run_polling(self._bot, self._dispatcher, polling_timeout_s=self._polling_timeout_s))
        self._polling.add_done_callback(self._polling_done)

    def _polling_done(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        reason = "cancelled" if task.cancelled() else repr(task.exception())
        try:
            self.actor_ref.tell(Call("polling_ended", (reason,), {}))
        except ActorDeadError:
            pass

    def polling_ended(self, reason: str) -> None:
        raise RuntimeError(f"bot polling stopped on its own: {reason[:300]}")  # crash: restart me

    async def on_stop(self) -> None:
        await self._shutdown()

    async def on_failure(self, *_exc: Any) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        task, dispatcher, bot = self._polling, self._dispatcher, self._bot
        if task is not None and not task.done() and dispatcher is not None:
            with contextlib.suppress(RuntimeError):  # "polling is not started" (still in deleteWebhook)
                await dispatcher.stop_polling()
            _done, pending = await asyncio.wait({task}, timeout=STOP_WAIT_S)
            for late in pending:
                late.cancel()
                await asyncio.wait({late})
        if bot is not None:
            await bot.session.close()
