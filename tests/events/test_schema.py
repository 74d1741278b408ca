"""The event schema: every type round-trips through JSON; malformed events are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teller.events import EVENT_REQUIRED_KEYS, Event, EventType

SAMPLE_PAYLOADS = {
    EventType.DEPOSIT_SEEN: {"asset": "USDT", "chain": "ethereum", "amount": "12.5", "tx_hash": "0xab",
                             "confirmations": 1, "required_confirmations": 12},
    EventType.DEPOSIT_CREDITED: {"asset": "USDT", "chain": "ethereum", "amount": "12.5", "tx_hash": "0xab"},
    EventType.DEPOSIT_ORPHANED: {"asset": "ETH", "chain": "ethereum", "amount": "0.1", "tx_hash": "0xab"},
    EventType.DEPOSIT_REVERSED: {"asset": "ETH", "chain": "ethereum", "amount": "0.1", "tx_hash": "0xab",
                                 "deposit_id": "7"},
    EventType.WITHDRAWAL_BROADCAST: {"asset": "USDT", "chain": "bsc", "amount": "3", "withdrawal_id": "w1",
                                     "to": "0x" + "1" * 40, "tx_hash": "0xcd"},
    EventType.WITHDRAWAL_CONFIRMED: {"asset": "USDT", "chain": "bsc", "amount": "3", "withdrawal_id": "w1",
                                     "to": "0x" + "1" * 40, "tx_hash": "0xcd"},
    EventType.WITHDRAWAL_FAILED: {"asset": "USDT", "chain": "bsc", "amount": "3", "withdrawal_id": "w1",
                                  "reason": "reverted"},
    EventType.IRT_CREDITED: {"asset": "IRT", "chain": None, "amount": "150000", "reference": "ref-1"},
    EventType.CARD_VERIFIED: {"card_masked": "603799******1234"},
}


def test_every_type_has_a_sample() -> None:
    assert set(SAMPLE_PAYLOADS) == set(EventType) == set(EVENT_REQUIRED_KEYS)


@pytest.mark.parametrize("event_type", list(EventType))
def test_round_trip(event_type: EventType) -> None:
    event = Event(id=f"e-{event_type.value}", type=event_type, user_id="u1", payload=SAMPLE_PAYLOADS[event_type],
                  created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    back = Event.from_json(event.to_json())
    assert back == event
    assert event.subject == f"wallet.events.{event_type.value}"  # the seed's subject (teller.events before)
    assert json.loads(event.to_json())["created_at"] == "2024-05-01T12:00:00Z"


def test_type_given_as_string_is_normalised() -> None:
    event = Event(id="x", type="deposit.credited", user_id="u", payload=SAMPLE_PAYLOADS[EventType.DEPOSIT_CREDITED])
    assert event.type is EventType.DEPOSIT_CREDITED


@pytest.mark.parametrize("payload", [
    {"asset": "USDT", "chain": "ethereum", "tx_hash": "0x"},                       # no amount
    {"asset": "USDT", "chain": "ethereum", "amount": 12.5, "tx_hash": "0x"},        # float amount
    {"asset": "USDT", "chain": "ethereum", "amount": "-1", "tx_hash": "0x"},        # signed
    {"asset": "USDT", "chain": "ethereum", "amount": "1e3", "tx_hash": "0x"},       # exponent
    {"asset": "USDT", "chain": "ethereum", "amount": "1", "tx_hash": "0x", "fee": 0.1},  # float anywhere
    {"asset": "USDT", "chain": "ethereum", "amount": "1", "tx_hash": object()},
])
def test_bad_payloads_are_refused(payload: dict) -> None:
    with pytest.raises(ValueError):
        Event(id="x", type=EventType.DEPOSIT_CREDITED, user_id="u", payload=payload)


def _nested(levels: int, leaf: object) -> object:
    for _ in range(levels):
        leaf = {"k": leaf}
    return leaf


@pytest.mark.parametrize(("extra", "accepted"), [
    (_nested(3, "x"), True),             # the leaf four levels below the payload: the limit
    (_nested(4, "x"), False),            # five: too deep, even for a plain string
    ([[1, True, None, "s"]], True),
    ([[1, 0.5]], False),                 # a float inside a list inside a list
    ({"k": (1, {"j": 2.0})}, False),
    ({1: "x"}, False),                   # a key that is not a string
])
def test_nested_payload_values(extra: object, accepted: bool) -> None:
    payload = {**SAMPLE_PAYLOADS[EventType.DEPOSIT_CREDITED], "extra": extra}
    if accepted:
        Event(id="x", type=EventType.DEPOSIT_CREDITED, user_id="u", payload=payload)
    else:
        with pytest.raises(ValueError):
            Event(id="x", type=EventType.DEPOSIT_CREDITED, user_id="u", payload=payload)


@pytest.mark.parametrize("event_id", ["", "a b", "x" * 129, "ü"])
def test_bad_ids_are_refused(event_id: str) -> None:
    with pytest.raises(ValueError):
        Event(id=event_id, type=EventType.CARD_VERIFIED, user_id="u", payload={"card_masked": "1"})


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError):
        Event(id="x", type="deposit.stolen", user_id="u", payload={})


def test_payload_is_frozen() -> None:
    event = Event(id="x", type=EventType.CARD_VERIFIED, user_id="u", payload={"card_masked": "1"})
    with pytest.raises(TypeError):
        event.payload["card_masked"] = "2"  # type: ignore[index]


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_from_json_only_ever_raises_value_error(data: bytes | str) -> None:
    try:
        Event.from_json(data)
    except ValueError:
        pass


@given(st.dictionaries(st.sampled_from(["id", "type", "user_id", "payload", "created_at"]),
                       st.none() | st.integers() | st.text(max_size=20) | st.floats() | st.lists(st.integers(), max_size=3)
                       | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)))
def test_from_json_of_structured_garbage_raises_value_error(raw: dict) -> None:
    try:
        Event.from_json(json.dumps(raw))
    except ValueError:
        pass
