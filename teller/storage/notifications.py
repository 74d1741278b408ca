"""Which events the notifier has sent, and the relay's view of the outbox (parking included).

At most one Telegram message per event, across restarts: ``claim`` inserts the event's row as
``sending`` BEFORE the message goes out (a unique key, so two claimers cannot both win), then
``finish`` records the outcome (``sent``, ``blocked``, ``rejected``, ``failed``). A crash between
the two leaves ``sending``: that event is never sent again. The trade-off is deliberate: a lost
"deposit credited" message is an annoyance (the balance and the history show the truth), a
doubled one looks like a double credit to the user. ``release`` deletes a claim whose send surely
never reached Telegram (our own rate limiter refused it), so it may be retried.

``undelivered``/``park`` are the relay's reads and writes on ``outbox`` (``teller.storage.outbox``
predates parking): a parked row stays undelivered, so it keeps showing in the backlog.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from teller.storage.store import Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Notifications", "NotificationRecord", "OutboxRows", "OutboxRow", "Outcome", "PARK_REASON_LEN_MAX"]

Outcome = Literal["sent", "blocked", "rejected", "failed", "skipped"]
DETAIL_LEN_MAX = 200
PARK_REASON_LEN_MAX = 300
_OUTCOMES = frozenset({"sent", "blocked", "rejected", "failed", "skipped"})


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    event_id: int
    user_id: int | None
    telegram_id: int | None
    status: str
    sent_at: datetime
    detail: str | None


class Notifications:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def claim(self, event_id: int, *, user_id: int | None, telegram_id: int | None) -> bool:
        """True if this caller now owns the event's one send; False if anyone ever claimed it."""
        inserted = await self._store.execute(
            "INSERT INTO notifications_sent (event_id, user_id, telegram_id, status, sent_at)"
            " VALUES (?, ?, ?, 'sending', ?) ON CONFLICT (event_id) DO NOTHING",
            event_id, user_id, telegram_id, utc_now())
        return inserted == 1

    async def finish(self, event_id: int, outcome: Outcome, *, detail: str = "") -> None:
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown notification outcome {outcome!r}")
        # Only a row still 'sending' moves: a finished record is never rewritten.
        await self._store.execute(
            "UPDATE notifications_sent SET status = ?, detail = ?, sent_at = ? WHERE event_id = ? AND status = 'sending'",
            outcome, detail[:DETAIL_LEN_MAX] or None, utc_now(), event_id)

    async def record(self, event_id: int, outcome: Outcome, *, user_id: int | None = None,
                     telegram_id: int | None = None, detail: str = "") -> bool:
        """Record an outcome with no send (e.g. ``skipped``: unknown user); False if already recorded."""
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown notification outcome {outcome!r}")
        inserted = await self._store.execute(
            "INSERT INTO notifications_sent (event_id, user_id, telegram_id, status, sent_at, detail)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
            event_id, user_id, telegram_id, outcome, utc_now(), detail[:DETAIL_LEN_MAX] or None)
        return inserted == 1

    async def release(self, event_id: int) -> None:
        """Drop a 'sending' claim whose message surely never left (so a retry cannot double it)."""
        await self._store.execute("DELETE FROM notifications_sent WHERE event_id = ? AND status = 'sending'", event_id)

    async def get(self, event_id: int) -> NotificationRecord | None:
        row = await self._store.fetch_one("SELECT * FROM notifications_sent WHERE event_id = ?", event_id)
        if row is None:
            return None
        return NotificationRecord(row["event_id"], row["user_id"], row["telegram_id"], row["status"],
                                  row["sent_at"], row["detail"])

    async def unnotified_since(self, *, delivered_after: datetime, limit: int, after_id: int = 0) -> list[OutboxRow]:
        """Delivered outbox events with no notification record (lost from a crashed notifier's mailbox),
        by id from ``after_id``."""
        rows = await self._store.fetch_all(
            "SELECT o.id, o.type, o.payload, o.created_at FROM outbox o"
            " LEFT JOIN notifications_sent n ON n.event_id = o.id"
            " WHERE o.id > ? AND o.delivered_at IS NOT NULL AND o.delivered_at > ? AND n.event_id IS NULL"
            " ORDER BY o.id LIMIT ?", after_id, delivered_after, limit)
        return [_outbox_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as stored; ``payload`` is whatever the JSON held (``None`` if it was not JSON)."""

    id: int
    type: str
    payload: Any
    created_at: datetime
    payload_chars: int = 0  # length of the stored JSON text (ASCII-escaped: >= its UTF-8 re-encoding)


class OutboxRows:
    """The relay's outbox access: unparked undelivered rows in id order, parking, counts."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def undelivered(self, *, limit: int, skip: tuple[int, int] | None = None) -> list[OutboxRow]:
        """The oldest rows to relay; ``skip`` (first id, last id) leaves out a batch still in flight.

        Only that id range is left out, never "everything up to it": a row that commits late inside
        or below it (PostgreSQL ids come from a sequence) is still read, by this call or the next.
        """
        if skip is None:
            rows = await self._store.fetch_all(
                "SELECT id, type, payload, created_at FROM outbox"
                " WHERE delivered_at IS NULL AND parked_reason IS NULL ORDER BY id LIMIT ?", limit)
        else:
            rows = await self._store.fetch_all(
                "SELECT id, type, payload, created_at FROM outbox"
                " WHERE delivered_at IS NULL AND parked_reason IS NULL AND (id < ? OR id > ?) ORDER BY id LIMIT ?",
                skip[0], skip[1], limit)
        return [_outbox_row(r) for r in rows]

    async def park(self, row_id: int, reason: str) -> None:
        await self._store.run_atomic([Write(
            "UPDATE outbox SET parked_reason = ? WHERE id = ? AND delivered_at IS NULL",
            (reason[:PARK_REASON_LEN_MAX] or "unpublishable", row_id))])

    async def parked_count(self) -> int:
        row = await self._store.fetch_one(
            "SELECT count(*) AS n FROM outbox WHERE delivered_at IS NULL AND parked_reason IS NOT NULL")
        assert row is not None
        return int(row["n"])


def _outbox_row(row: dict[str, Any]) -> OutboxRow:
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        payload = None  # the relay parks it; a bad row must not stop the queue
    text = row["payload"]
    return OutboxRow(row["id"], row["type"], payload, row["created_at"], len(text) if isinstance(text, str) else 0)
