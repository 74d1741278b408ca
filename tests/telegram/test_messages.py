"""Message texts: one per event type, amounts in display units with asset and chain."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teller.events import Event, EventType
from teller.telegram.messages import BALANCE_ROWS_MAX, balances_text, display_amount, message_for
from tests.events.test_schema import SAMPLE_PAYLOADS

ADDR = "0x1234567890abcdef1234567890abcdef1234abcd"
EXPECTED = {
    EventType.DEPOSIT_SEEN: "⏳ Deposit on its way: 12.5 USDT on ethereum (1/12 confirmations). "
                            "We'll tell you when it is credited.",
    EventType.DEPOSIT_CREDITED: "✅ Deposit credited: 12.5 USDT on ethereum",
    EventType.DEPOSIT_ORPHANED: "⚠️ Deposit dropped: 0.1 ETH on ethereum. The transaction left the chain in a "
                                "reorganisation and was not credited. If it is mined again, it will be credited then.",
    EventType.DEPOSIT_REVERSED: "⚠️ A credited deposit left the chain: 0.1 ETH on ethereum. Its transaction was "
                                "dropped in a reorganisation and did not come back. Withdrawals of this asset "
                                "are paused on your account until support reviews it.",
    EventType.WITHDRAWAL_BROADCAST: "📤 Withdrawal sent: 3 USDT on bsc to 0x1234…abcd. Waiting for confirmations.",
    EventType.WITHDRAWAL_CONFIRMED: "✅ Withdrawal confirmed: 3 USDT on bsc to 0x1234…abcd",
    EventType.WITHDRAWAL_FAILED: "❌ Withdrawal failed: 3 USDT on bsc (reverted). The amount is back in your balance.",
    EventType.IRT_CREDITED: "✅ Rial payment credited: 150,000 tomans (1,500,000 rials)",
    EventType.CARD_VERIFIED: "✅ Card verified: 603799******1234. Payments from it will be credited to you.",
}


@pytest.mark.parametrize("event_type", list(EventType))
def test_text_for_every_event_type(event_type: EventType) -> None:
    payload = dict(SAMPLE_PAYLOADS[event_type])
    if "to" in payload:
        payload["to"] = ADDR
    event = Event(id="e1", type=event_type, user_id="u1", payload=payload)
    assert message_for(event) == EXPECTED[event_type]


def test_every_event_type_is_covered() -> None:
    assert set(EXPECTED) == set(EventType)


@pytest.mark.parametrize(("amount", "shown"), [
    ("0", "0"), ("999", "999"), ("1000", "1,000"), ("1234567.000001", "1,234,567.000001"), ("0.5", "0.5"),
])
def test_display_amount(amount: str, shown: str) -> None:
    assert display_amount(amount) == shown


@given(st.from_regex(r"[0-9]{1,40}(\.[0-9]{1,18})?", fullmatch=True))
def test_display_amount_never_changes_a_digit(amount: str) -> None:
    assert display_amount(amount).replace(",", "") == amount


def test_balances_text() -> None:
    text = balances_text([("USDT", "ethereum", "10.5", "2"), ("ETH", "ethereum", "0.25", "0"), ("IRT", None, "150000.5", "0")])
    assert text == ("💰 Your balances:\n• 10.5 USDT on ethereum (+2 held for withdrawals)\n"
                    "• 0.25 ETH on ethereum\n• 150,000.5 tomans")
    assert "no balances" in balances_text([])


def test_long_balance_list_is_bounded() -> None:
    text = balances_text([(f"T{i}", "ethereum", "1", "0") for i in range(BALANCE_ROWS_MAX + 5)])
    assert text.count("•") == BALANCE_ROWS_MAX and "5 more" in text and len(text) < 4096
