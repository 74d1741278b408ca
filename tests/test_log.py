"""The log's last line of defence: whatever a caller passes, secrets and full card numbers never reach the output."""

from __future__ import annotations

import io
import json

from hypothesis import given, strategies as st

from teller.log import get_logger, redact

card_numbers = st.text(alphabet="0123456789", min_size=16, max_size=19)
prose = st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=20)


@given(before=prose, card=card_numbers, after=prose)
def test_a_full_card_number_inside_any_text_is_masked(before: str, card: str, after: str) -> None:
    event = redact(None, "info", {"event": "x", "note": f"{before}{card}{after}"})
    assert card not in event["note"]
    assert event["note"] == f"{before}{card[:6]}******{card[-4:]}{after}"


@given(digits=st.text(alphabet="0123456789", max_size=11))
def test_short_numbers_are_left_alone(digits: str) -> None:
    assert redact(None, "info", {"event": "x", "amount": digits})["amount"] == digits


def test_secret_named_keys_are_masked_whatever_their_value() -> None:
    event = redact(None, "info", {
        "event": "x", "bot_token": "123:abc", "private_key": "0x" + "1" * 64, "mnemonic": "abandon abandon",
        "init_data": "query_id=1&hash=ff", "Authorization": "Bearer x", "jwt_secret": 42, "card_number": "6037997512345678",
        "password": None,
    })
    assert {key for key, value in event.items() if value == "<redacted>"} == {
        "bot_token", "private_key", "mnemonic", "init_data", "Authorization", "jwt_secret", "card_number", "password"}


def test_id_keys_that_only_end_in_key_stay_readable() -> None:
    event = redact(None, "info", {"event": "x", "idempotency_key": "w-1", "key": "k", "event_key": "e", "transfer_key": "t"})
    assert event == {"event": "x", "idempotency_key": "w-1", "key": "k", "event_key": "e", "transfer_key": "t"}


def test_a_logged_line_is_json_with_the_actor_path_and_nothing_secret(log_stream: io.StringIO) -> None:
    stream = log_stream
    get_logger(actor="/teller/wallets/7").info("card added", card="6037997512345678", api_token="s3cret", user_id=7)
    line = json.loads(stream.getvalue())
    assert line["actor"] == "/teller/wallets/7" and line["user_id"] == 7 and line["event"] == "card added"
    assert line["card"] == "603799******5678" and line["api_token"] == "<redacted>"
    assert "s3cret" not in stream.getvalue() and "6037997512345678" not in stream.getvalue()
