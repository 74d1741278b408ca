"""``ThreadActor``: an actor whose handlers run on its own thread, reached from the loop.

For blocking or CPU-heavy work (the signer). The mailbox, supervision and futures are the
``AsyncioActor``'s; only the handler calls (and ``on_start``/``on_stop``/``on_failure``) hop to one
dedicated thread, so the loop keeps serving while a handler blocks, and thread-affine state (a
blocking client, a key in memory) always stays on the same thread. Handlers must be plain functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import CoroutineType
from typing import Any

from teller.runtime.actor import AsyncioActor


class ThreadActor(AsyncioActor):
    """An actor with one dedicated worker thread for its handlers."""

    _executor: ThreadPoolExecutor | None = None

    def _start_actor_loop(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        super()._start_actor_loop()

    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> Any:
        return self._in_thread(hook, *args)

    def _dispatch(self, msg: Any) -> Any:
        return self._in_thread(AsyncioActor._dispatch, self, msg)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        result = await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        if type(result) is CoroutineType:
            result.close()
            raise TypeError(f"{type(self).__name__}: ThreadActor handlers must not be async def")
        return result

    def _after_exit(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
