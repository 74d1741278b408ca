"""Teller's events: the schema (what is announced) and the NATS JetStream publisher."""

from teller.events.jetstream import PUBLISH_BATCH_MAX, JetStreamPublisher, PublishResult, SentBatch
from teller.events.schema import (
    EVENT_ID_LEN_MAX,
    EVENT_JSON_BYTES_MAX,
    EVENT_REQUIRED_KEYS,
    LEGACY_SUBJECT_PREFIX,
    SUBJECT_PREFIX,
    Event,
    EventType,
    check_subject_prefix,
    new_event_id,
)

__all__ = [
    "Event",
    "EventType",
    "EVENT_REQUIRED_KEYS",
    "EVENT_ID_LEN_MAX",
    "EVENT_JSON_BYTES_MAX",
    "SUBJECT_PREFIX",
    "LEGACY_SUBJECT_PREFIX",
    "check_subject_prefix",
    "new_event_id",
    "JetStreamPublisher",
    "PublishResult",
    "SentBatch",
    "PUBLISH_BATCH_MAX",
]
