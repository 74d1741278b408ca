"""The bot's memory of recent Telegram update ids: a redelivered update is taken in once.

Telegram redelivers a webhook update when our answer is late or fails, and a long poller that dies
before confirming its offset gets the same updates again. A reply (``sendMessage``) is not
idempotent, so ``claim`` records the update id (insert-or-ignore on the primary key) before any
handler runs; a second claim of the same id, from this process or a later one, is refused.

The memory is bounded twice: rows older than ``KEPT_S`` go (Telegram keeps an undelivered update
for 24 hours, so no redelivery comes later than that), and past ``KEPT_MAX`` rows the oldest ids
go. Pruning runs on the first claim and then every ``PRUNE_EVERY_CLAIMS`` claims, not on each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from teller.storage.store import utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["BotUpdates", "KEPT_S", "KEPT_MAX", "PRUNE_EVERY_CLAIMS"]

KEPT_S = 48 * 3600           # twice Telegram's 24 h retention of an undelivered update
KEPT_MAX = 100_000           # rows kept (ties in received_at at the cut stay); a busier bot keeps its newest
PRUNE_EVERY_CLAIMS = 256


class BotUpdates:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._claims_until_prune = 0  # prune on the first claim: a restart after a long pause cleans up

    async def claim(self, update_id: int) -> bool:
        """True if this caller is the first to take in ``update_id``; False for a repeat."""
        if self._claims_until_prune <= 0:
            await self.prune()
            self._claims_until_prune = PRUNE_EVERY_CLAIMS
        self._claims_until_prune -= 1
        inserted = await self._store.execute(
            "INSERT INTO bot_updates (update_id, received_at) VALUES (?, ?) ON CONFLICT (update_id) DO NOTHING",
            update_id, utc_now())
        return inserted == 1

    async def prune(self, *, kept_s: int = KEPT_S, kept_max: int = KEPT_MAX) -> None:
        """Forget ids older than ``kept_s`` and all but the newest ``kept_max``."""
        await self._store.execute("DELETE FROM bot_updates WHERE received_at < ?",
                                  utc_now() - timedelta(seconds=kept_s))
        await self._store.execute(
            "DELETE FROM bot_updates WHERE received_at < (SELECT received_at FROM bot_updates"
            " ORDER BY received_at DESC LIMIT 1 OFFSET ?)", kept_max - 1)

    async def count(self) -> int:
        row = await self._store.fetch_one("SELECT COUNT(*) AS n FROM bot_updates")
        return int(row["n"]) if row else 0
