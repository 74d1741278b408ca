"""Telegram's send limits as token buckets: about 1 message/s per chat, about 30/s overall.

Pure bookkeeping over a clock. A send first books its chat's slot (``reserve_chat``), waits, then
books a bot-wide token (``reserve_global``, GCRA: the virtual-scheduling form of a token bucket)
and waits again. Each call says how long to wait and books in the same step, so concurrent
senders on one event loop never both take the last token; booking the global token only after
the chat's wait keeps GCRA's bookings in time order (a chat waiting a second must not hold the
bot-wide bucket hostage). A wait longer than the caller's bound books nothing and returns
``None``: the caller retries later instead of queueing without limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["SendLimiter", "CHATS_TRACKED_MAX"]

# Chats whose next slot is still in the future are remembered; older entries impose no wait
# and are pruned past this bound.
CHATS_TRACKED_MAX = 100_000


class SendLimiter:
    def __init__(
        self,
        *,
        per_chat_interval_s: float = 1.0,
        global_per_s: float = 30.0,
        global_burst: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_chat_interval_s < 0 or global_per_s <= 0 or global_burst < 1:
            raise ValueError("limits must be positive")
        self._per_chat_interval_s = per_chat_interval_s
        self._emission_s = 1.0 / global_per_s
        self._tolerance_s = (global_burst - 1) * self._emission_s
        self._clock = clock
        self._tat = clock()  # theoretical arrival time of the next global send
        self._chat_next: dict[Hashable, float] = {}

    def reserve_chat(self, chat_id: Hashable, *, wait_max_s: float) -> float | None:
        """Book the chat's next slot; returns the seconds to wait first, or None if over ``wait_max_s``."""
        now = self._clock()
        start = max(now, self._chat_next.get(chat_id, now))
        if start - now > wait_max_s:
            return None
        self._chat_next[chat_id] = start + self._per_chat_interval_s
        self._prune(now)
        return start - now

    def reserve_global(self, *, wait_max_s: float) -> float | None:
        """Book one of the bot-wide tokens *now* (after the chat's wait, so bookings stay in time order)."""
        now = self._clock()
        start = max(now, self._tat - self._tolerance_s)
        if start - now > wait_max_s:
            return None
        self._tat = max(self._tat, now) + self._emission_s
        return start - now

    def defer_chat(self, chat_id: Hashable, delay_s: float) -> None:
        """Telegram said 429 for this chat: no send to it before ``delay_s`` from now."""
        until = self._clock() + delay_s
        self._chat_next[chat_id] = max(self._chat_next.get(chat_id, until), until)
        self._prune(self._clock())

    def _prune(self, now: float) -> None:
        if len(self._chat_next) <= CHATS_TRACKED_MAX:
            return
        self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
        while len(self._chat_next) > CHATS_TRACKED_MAX:  # only under an absurd burst: forget the oldest
            del self._chat_next[next(iter(self._chat_next))]
