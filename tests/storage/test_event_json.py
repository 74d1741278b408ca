"""An outbox event's JSON: exactly what ``json.dumps`` writes, however the payload looks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teller.storage import Event

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(st.dictionaries(st.text(), _json_values, max_size=8))
def test_payload_json_is_json_dumps_byte_for_byte(payload: dict) -> None:
    assert Event("t", payload).payload_json() == json.dumps(payload, separators=(",", ":"), sort_keys=True)


def test_a_payload_json_cannot_write_is_an_error() -> None:
    with pytest.raises(TypeError):
        Event("t", {"at": object()}).payload_json()
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        Event("t", circular).payload_json()


def test_a_failed_payload_leaves_nothing_behind_for_the_next() -> None:
    payload = {"a": {"inner": object()}}
    with pytest.raises(TypeError):
        Event("t", payload).payload_json()
    payload["a"]["inner"] = 1  # the same dicts again: not mistaken for a circular reference
    assert Event("t", payload).payload_json() == '{"a":{"inner":1}}'
