"""Event -> the short, plain-text Telegram message a user reads. Pure functions, one per event type.

Amounts arrive in display units (decimal strings, validated by the event schema) and are shown
with the asset's unit and chain, the integer part grouped by thousands ("150,000.5 tomans"): a
string operation, so no digit is ever rounded. IRT is the toman (``teller.assets``): its unit reads
"tomans", and a credited rial payment also says the rials the bank statement shows. Addresses and
hashes are shortened for reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from teller.assets import IRT_CODE, IRT_DECIMALS
from teller.errors import InvalidAmount
from teller.events.schema import Event, EventType
from teller.money import parse_amount

__all__ = ["message_for", "balances_text", "display_amount", "unit_name", "BALANCE_ROWS_MAX"]

# A balance list longer than this is cut with a pointer to the Mini App (Telegram caps a message
# at 4096 characters and a chat is no place for a ledger).
BALANCE_ROWS_MAX = 30
_REASON_LEN_MAX = 200
# The word a user reads after an amount, where it is not the asset's symbol.
_UNIT_NAMES: Mapping[str, str] = {IRT_CODE: "tomans"}


def display_amount(amount: str) -> str:
    whole, dot, frac = amount.partition(".")
    groups = []
    while len(whole) > 3:
        whole, groups = whole[:-3], [whole[-3:], *groups]
    return ",".join([whole, *groups]) + (dot + frac if frac else "")


def unit_name(asset: str) -> str:
    return _UNIT_NAMES.get(asset, asset)


def _money(payload: Mapping[str, Any]) -> str:
    text = f"{display_amount(payload['amount'])} {unit_name(payload['asset'])}"
    return f"{text} on {payload['chain']}" if payload.get("chain") else text


def _short(value: str) -> str:
    return value if len(value) <= 14 else f"{value[:6]}…{value[-4:]}"


def deposit_seen(p: Mapping[str, Any]) -> str:
    return (f"⏳ Deposit on its way: {_money(p)} "
            f"({p['confirmations']}/{p['required_confirmations']} confirmations). "
            "We'll tell you when it is credited.")


def deposit_credited(p: Mapping[str, Any]) -> str:
    return f"✅ Deposit credited: {_money(p)}"


def deposit_orphaned(p: Mapping[str, Any]) -> str:
    return (f"⚠️ Deposit dropped: {_money(p)}. The transaction left the chain in a reorganisation "
            "and was not credited. If it is mined again, it will be credited then.")


def deposit_reversed(p: Mapping[str, Any]) -> str:
    return (f"⚠️ A credited deposit left the chain: {_money(p)}. Its transaction was dropped in a "
            "reorganisation and did not come back. Withdrawals of this asset are paused on your account "
            "until support reviews it.")


def withdrawal_broadcast(p: Mapping[str, Any]) -> str:
    return f"📤 Withdrawal sent: {_money(p)} to {_short(p['to'])}. Waiting for confirmations."


def withdrawal_confirmed(p: Mapping[str, Any]) -> str:
    return f"✅ Withdrawal confirmed: {_money(p)} to {_short(p['to'])}"


def withdrawal_failed(p: Mapping[str, Any]) -> str:
    reason = str(p["reason"])[:_REASON_LEN_MAX]
    return f"❌ Withdrawal failed: {_money(p)} ({reason}). The amount is back in your balance."


def irt_credited(p: Mapping[str, Any]) -> str:
    return f"✅ Rial payment credited: {_money(p)}{_in_rials(p['amount'])}"


def _in_rials(tomans: str) -> str:
    """" (1,500,005 rials)": the figure the user's bank shows; nothing when the text is no toman amount."""
    try:
        rials = parse_amount(tomans, IRT_DECIMALS, allow_zero=True)
    except InvalidAmount:
        return ""
    return f" ({display_amount(str(rials))} rials)"


def card_verified(p: Mapping[str, Any]) -> str:
    return f"✅ Card verified: {p['card_masked']}. Payments from it will be credited to you."


_BY_TYPE: Mapping[EventType, Callable[[Mapping[str, Any]], str]] = {
    EventType.DEPOSIT_SEEN: deposit_seen,
    EventType.DEPOSIT_CREDITED: deposit_credited,
    EventType.DEPOSIT_ORPHANED: deposit_orphaned,
    EventType.DEPOSIT_REVERSED: deposit_reversed,
    EventType.WITHDRAWAL_BROADCAST: withdrawal_broadcast,
    EventType.WITHDRAWAL_CONFIRMED: withdrawal_confirmed,
    EventType.WITHDRAWAL_FAILED: withdrawal_failed,
    EventType.IRT_CREDITED: irt_credited,
    EventType.CARD_VERIFIED: card_verified,
}


def message_for(event: Event) -> str:
    """The text for ``event``; every ``EventType`` has one (checked by the tests)."""
    return _BY_TYPE[event.type](event.payload)


def balances_text(rows: Sequence[tuple[str, str | None, str, str]]) -> str:
    """``/balance``: rows of (asset, chain or None, available, held), amounts in display units."""
    if not rows:
        return "You have no balances yet. Open the wallet to get a deposit address."
    lines = ["💰 Your balances:"]
    for asset, chain, available, held in rows[:BALANCE_ROWS_MAX]:
        where = f" on {chain}" if chain else ""
        line = f"• {display_amount(available)} {unit_name(asset)}{where}"
        if held not in ("0", ""):
            line += f" (+{display_amount(held)} held for withdrawals)"
        lines.append(line)
    if len(rows) > BALANCE_ROWS_MAX:
        lines.append(f"…and {len(rows) - BALANCE_ROWS_MAX} more in the wallet.")
    return "\n".join(lines)
