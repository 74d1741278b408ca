"""The transactional outbox: events written in the same DB transaction as the change they announce.

The relay reads the oldest undelivered rows in id order (``undelivered``), publishes them, then
``mark_delivered``. Delivery is at-least-once: a crash between publish and mark re-sends, so
consumers dedupe on the event id. On PostgreSQL ids come from a sequence, so a row may commit
shortly after a higher id: it is still undelivered and is picked up by the next read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from teller.storage.ledger_types import Event
from teller.storage.store import Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Outbox", "OutboxEvent", "OutboxBacklog", "OUTBOX_BATCH_MAX"]

OUTBOX_BATCH_MAX = 500


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    type: str
    payload: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    size: int
    oldest_age_s: float | None


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    @staticmethod
    def write(event: Event) -> Write:
        """An outbox row as a ``Write`` for ``run_atomic`` (events without a ledger transfer)."""
        return Write("INSERT INTO outbox (type, payload, created_at) VALUES (?, ?, ?)",
                     (event.type, event.payload_json(), utc_now()))

    async def add(self, event: Event) -> None:
        await self._store.run_atomic([self.write(event)])

    async def undelivered(self, *, limit: int = OUTBOX_BATCH_MAX) -> list[OutboxEvent]:
        limit = max(1, min(limit, OUTBOX_BATCH_MAX))
        rows = await self._store.fetch_all(
            "SELECT id, type, payload, created_at FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?", limit)
        return [OutboxEvent(r["id"], r["type"], json.loads(r["payload"]), r["created_at"]) for r in rows]

    async def mark_delivered(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        if len(ids) > OUTBOX_BATCH_MAX:
            raise ValueError(f"at most {OUTBOX_BATCH_MAX} ids at a time")
        marks = ",".join("?" * len(ids))
        return await self._store.execute(
            f"UPDATE outbox SET delivered_at = ? WHERE delivered_at IS NULL AND id IN ({marks})",
            utc_now(), *ids)

    async def backlog(self) -> OutboxBacklog:
        row = await self._store.fetch_one(
            "SELECT count(*) AS size, min(created_at) AS oldest_at FROM outbox WHERE delivered_at IS NULL")
        assert row is not None
        oldest = row["oldest_at"]
        return OutboxBacklog(int(row["size"]), None if oldest is None else (utc_now() - oldest).total_seconds())
