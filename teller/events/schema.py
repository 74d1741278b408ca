"""The events Teller emits: a small explicit registry, one frozen ``Event`` type, JSON on the wire.

Type names are dotted (``deposit.credited``); an event travels on the subject
``<prefix>.<type>``, the prefix being ``[nats] subject_prefix`` (default ``wallet.events``, the seed's
subject; it was ``teller.events`` before issue 15), and its ``id`` is the JetStream ``Nats-Msg-Id``, so
the id must be derived from what the event announces (the outbox row), never minted again on a retry.

Payloads hold only JSON-safe values and never a float: amounts are decimal strings in display
units (``"12.5"``) beside the ``asset`` and (for crypto) the ``chain``. Each type names the
payload keys it requires; an event missing one is refused when built and when read back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "EventType",
    "Event",
    "EVENT_REQUIRED_KEYS",
    "SUBJECT_PREFIX",
    "LEGACY_SUBJECT_PREFIX",
    "SUBJECT_PREFIX_LEN_MAX",
    "check_subject_prefix",
    "EVENT_ID_LEN_MAX",
    "EVENT_JSON_BYTES_MAX",
    "new_event_id",
]

SUBJECT_PREFIX = "wallet.events"
LEGACY_SUBJECT_PREFIX = "teller.events"  # the prefix before issue 15 (docs/ARCHITECTURE.md, migration note)
SUBJECT_PREFIX_LEN_MAX = 128
# Dot-separated tokens of letters, digits, "_" and "-": no wildcard ("*", ">"), no "$" (NATS's own
# $JS/$SYS), no empty token, no whitespace. The stream then captures exactly "<prefix>.>".
_SUBJECT_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
# JetStream keeps Nats-Msg-Id values in its duplicate window; a short bound keeps that cheap.
EVENT_ID_LEN_MAX = 128
# An event is a notification, not a document; anything larger is a bug upstream.
EVENT_JSON_BYTES_MAX = 16 * 1024
_PAYLOAD_DEPTH_MAX = 4
_ID_RE = re.compile(r"[A-Za-z0-9_.:\-]+")
_AMOUNT_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
# Tuples, not ``str | bool | int`` unions: a union written in an isinstance call is built again on
# every call, and the relay validates every event it reads (the checks cost half as much so).
_JSON_SCALARS = (str, bool, int, type(None))  # a float is none of these (no type is both int and float)
_JSON_ARRAYS = (list, tuple)
_STR_OR_NONE = (str, type(None))


class EventType(StrEnum):
    DEPOSIT_SEEN = "deposit.seen"
    DEPOSIT_CREDITED = "deposit.credited"
    DEPOSIT_ORPHANED = "deposit.orphaned"
    DEPOSIT_REVERSED = "deposit.reversed"   # a credited deposit left the chain for good; an operator decides
    WITHDRAWAL_BROADCAST = "withdrawal.broadcast"
    WITHDRAWAL_CONFIRMED = "withdrawal.confirmed"
    WITHDRAWAL_FAILED = "withdrawal.failed"
    IRT_CREDITED = "irt.credited"
    CARD_VERIFIED = "card.verified"


_CRYPTO = ("asset", "chain", "amount")
EVENT_REQUIRED_KEYS: Mapping[EventType, tuple[str, ...]] = MappingProxyType({
    EventType.DEPOSIT_SEEN: (*_CRYPTO, "tx_hash", "confirmations", "required_confirmations"),
    EventType.DEPOSIT_CREDITED: (*_CRYPTO, "tx_hash"),
    EventType.DEPOSIT_ORPHANED: (*_CRYPTO, "tx_hash"),
    EventType.DEPOSIT_REVERSED: (*_CRYPTO, "tx_hash", "deposit_id"),
    EventType.WITHDRAWAL_BROADCAST: (*_CRYPTO, "withdrawal_id", "to", "tx_hash"),
    EventType.WITHDRAWAL_CONFIRMED: (*_CRYPTO, "withdrawal_id", "to", "tx_hash"),
    EventType.WITHDRAWAL_FAILED: (*_CRYPTO, "withdrawal_id", "reason"),
    EventType.IRT_CREDITED: ("asset", "amount", "reference"),
    EventType.CARD_VERIFIED: ("card_masked",),
})


def check_subject_prefix(prefix: object) -> str:
    """``prefix`` if it is a NATS subject Teller may publish under, else ``ValueError`` saying what is allowed."""
    if not isinstance(prefix, str) or not 0 < len(prefix) <= SUBJECT_PREFIX_LEN_MAX \
            or not _SUBJECT_PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"a subject prefix is 1..{SUBJECT_PREFIX_LEN_MAX} characters: dot-separated tokens of "
                         "A-Z, a-z, 0-9, '_' and '-', no wildcards (e.g. \"wallet.events\")")
    return prefix


def new_event_id() -> str:
    """A fresh random id, for events that have no natural key (prefer one derived from the outbox row)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: EventType
    user_id: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not 0 < len(self.id) <= EVENT_ID_LEN_MAX or not _ID_RE.fullmatch(self.id):
            raise ValueError(f"event id must be 1..{EVENT_ID_LEN_MAX} chars of [A-Za-z0-9_.:-]")
        object.__setattr__(self, "type", EventType(self.type))
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError("event user_id must be a non-empty string")
        if self.created_at.tzinfo is None:
            raise ValueError("event created_at must be timezone-aware")
        _check_payload(self.type, self.payload)
        # Frozen all the way down: a published event must not change under the relay's feet.
        object.__setattr__(self, "payload", MappingProxyType(dict(self.payload)))

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX}.{self.type.value}"

    def subject_under(self, prefix: str) -> str:
        return f"{prefix}.{self.type.value}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type.value,
            "user_id": self.user_id,
            "payload": dict(self.payload),
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }

    def to_json(self) -> bytes:
        data = json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
        if len(data) > EVENT_JSON_BYTES_MAX:
            raise ValueError(f"event {self.id} is {len(data)} bytes, over {EVENT_JSON_BYTES_MAX}")
        return data

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        """Parse and validate an event; anything malformed raises ``ValueError``."""
        if len(data) > EVENT_JSON_BYTES_MAX:
            raise ValueError("event JSON is too large")
        try:
            raw = json.loads(data, parse_float=_refuse_float)
        except json.JSONDecodeError as exc:
            raise ValueError(f"event is not JSON: {exc}") from exc
        if not isinstance(raw, dict) or set(raw) != {"id", "type", "user_id", "payload", "created_at"}:
            raise ValueError("event JSON must have exactly id, type, user_id, payload, created_at")
        if not isinstance(raw["payload"], dict) or not isinstance(raw["created_at"], str):
            raise ValueError("event payload must be an object and created_at a string")
        try:
            created_at = datetime.fromisoformat(raw["created_at"])
        except ValueError as exc:
            raise ValueError("event created_at is not RFC 3339") from exc
        return cls(id=raw["id"], type=raw["type"], user_id=raw["user_id"], payload=raw["payload"], created_at=created_at)


def _refuse_float(text: str) -> Any:
    raise ValueError(f"floats are not allowed in events: {text}")


def _check_payload(event_type: EventType, payload: Mapping[str, Any]) -> None:
    if not isinstance(payload, Mapping):
        raise ValueError("event payload must be a mapping")
    missing = [k for k in EVENT_REQUIRED_KEYS[event_type] if k not in payload]
    if missing:
        raise ValueError(f"{event_type.value} payload is missing {', '.join(missing)}")
    _check_json_safe(payload, depth=0)
    amount = payload.get("amount")
    if amount is not None and not (isinstance(amount, str) and _AMOUNT_RE.fullmatch(amount)):
        raise ValueError("payload amount must be a decimal string in display units, e.g. \"12.5\"")
    for key in ("asset", "chain"):
        if key in payload and not isinstance(payload[key], _STR_OR_NONE):
            raise ValueError(f"payload {key} must be a string")


def _check_json_safe(value: Any, *, depth: int) -> None:
    if depth > _PAYLOAD_DEPTH_MAX:
        raise ValueError("event payload is nested too deeply")
    if isinstance(value, _JSON_SCALARS):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("event payload keys must be strings")
            _check_json_safe(item, depth=depth + 1)
        return
    if isinstance(value, _JSON_ARRAYS):
        for item in value:
            _check_json_safe(item, depth=depth + 1)
        return
    raise ValueError(f"event payload values must be JSON-safe (no float), got {type(value).__name__}")
