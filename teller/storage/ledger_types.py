"""The ledger's value types: what a caller submits, what it gets back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union

from teller.storage.store import Write

__all__ = ["Event", "Transfer", "TransferRequest", "Balance", "HistoryEntry", "HistoryPage", "Outcome"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
Kind = Literal["single", "pending", "post", "void"]


@dataclass(frozen=True, slots=True)
class Event:
    """An outbox row written in the same DB transaction as the transfer it announces."""

    type: str
    payload: Mapping[str, Any]

    def payload_json(self) -> str:
        # Serialized at submit time so a bad payload fails the caller, not the whole batch.
        return _ENCODER.encode(self.payload)


@dataclass(frozen=True, slots=True)
class Transfer:
    """A durable ledger transfer. ``replayed`` is True when the key already existed."""

    id: int
    key: str
    kind: Kind
    debit: str
    credit: str
    asset: str
    amount_minor: int
    pending_key: str | None
    created_at: datetime
    replayed: bool = False


@dataclass(slots=True)
class TransferRequest:
    """A validated submission, as the engines see it (internal)."""

    kind: Kind
    key: str
    fingerprint: str
    debit: str | None = None          # None for post/void: taken from the hold
    credit: str | None = None
    asset: str | None = None
    amount_minor: int | None = None   # None for a full post or a void
    pending_key: str | None = None
    debit_user_id: int | None = None
    credit_user_id: int | None = None
    events: Sequence[tuple[str, str]] = ()   # (type, payload JSON)
    writes: Sequence[Write] = field(default=())


Outcome = Union[Transfer, Exception]


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    available_minor: int
    held_minor: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: int
    key: str
    kind: Kind
    asset: str
    amount_minor: int
    direction: Literal["in", "out"]   # relative to the user
    counterparty: str
    status: str                       # posted | pending | voided
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    next_cursor: str | None           # pass back as ``cursor=`` for the next (older) page
