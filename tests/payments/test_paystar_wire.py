"""The wire parsers: what the real service might send that the sandbox does not."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from teller.payments import paystar_wire as wire

NOW_S = 1_800_000_000.0


@pytest.mark.parametrize(
    ("http_status", "body", "outcome"),
    [
        (200, {"status": 1}, wire.Outcome.OK),
        (200, {"status": "1"}, wire.Outcome.OK),  # clients in the wild read status as a string
        (200, {"status": "ok"}, wire.Outcome.OK),
        (401, {"status": 5}, wire.Outcome.AUTH),
        (401, None, wire.Outcome.AUTH),
        (200, {"status": 4}, wire.Outcome.AUTH),
        (422, {"status": 10}, wire.Outcome.INVALID_INPUT),
        (200, {"status": "10"}, wire.Outcome.INVALID_INPUT),
        (200, {"status": 11}, wire.Outcome.RETRYABLE),
        (503, None, wire.Outcome.RETRYABLE),
        (200, None, wire.Outcome.FAILED),
        (200, {"status": True}, wire.Outcome.FAILED),
        (200, {"status": 13}, wire.Outcome.FAILED),
        (404, {"status": 1}, wire.Outcome.FAILED),
        (200, ["status", 1], wire.Outcome.FAILED),
    ],
)
def test_classify(http_status: int, body: object, outcome: str) -> None:
    assert wire.classify(http_status, body) == outcome


def test_api_key_expiry_formats() -> None:
    def expiry(raw: object) -> float:
        return wire.parse_api_key({"status": 1, "data": {"api_key": "k", "api_key_expire_date": raw}}, now_s=NOW_S).expires_at_s

    assert expiry(NOW_S + 60) == NOW_S + 60
    assert expiry(str(int(NOW_S) + 60)) == NOW_S + 60
    utc_s = datetime(2027, 1, 15, 10, 0, tzinfo=timezone.utc).timestamp()
    assert expiry("2027-01-15T10:00:00+00:00") == utc_s
    # A naive date-time is read as Tehran time (UTC+03:30): earlier than reading it as UTC.
    assert expiry("2027-01-15 10:00:00") == utc_s - 3.5 * 3600
    assert expiry("tomorrow") == NOW_S + wire.API_KEY_LIFETIME_DEFAULT_S
    assert expiry(None) == NOW_S + wire.API_KEY_LIFETIME_DEFAULT_S


@pytest.mark.parametrize(
    "body",
    [None, {"status": 1}, {"status": 1, "data": []}, {"status": 1, "data": {"api_key": ""}}, {"status": 1, "data": {"api_key": 5}}],
)
def test_malformed_key_answers(body: object) -> None:
    with pytest.raises(wire.MalformedAnswer):
        wire.parse_api_key(body, now_s=NOW_S)


def test_key_repr_hides_the_key() -> None:
    key = wire.parse_api_key({"data": {"api_key": "very-secret-key"}}, now_s=NOW_S)
    assert "very-secret-key" not in repr(key)


@pytest.mark.parametrize("owners", [None, [], [""], ["Ali", 3], "Ali Ahmadi"])
def test_malformed_iban_answers(owners: object) -> None:
    with pytest.raises(wire.MalformedAnswer):
        wire.parse_iban_inquiry({"status": 1, "data": {"iban": "IR820540102680020817909002", "owners": owners}})
