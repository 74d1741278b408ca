"""The Mini App's shared contact (``WebApp.requestContact``): checked exactly like init data.

Telegram hands the Mini App a query string ``contact=<JSON>&auth_date=<s>&hash=<hex>`` signed with
the bot token the way init data is (HMAC-SHA256 keyed from ``"WebAppData"``); aiogram's
``check_webapp_signature`` checks it (constant-time). What it proves: Telegram gave this phone
number for ``contact.user_id``. The caller must be that user (a contact forwarded from someone else
is ``foreign_contact``), and the string must be recent (``auth_date`` within ``CONTACT_MAX_AGE_S``):
an old string is refused, a fresh one posted twice records the same thing twice (harmless).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiogram.utils.web_app import check_webapp_signature

from teller.errors import InvalidContact
from teller.http.auth import CLOCK_SKEW_S, TELEGRAM_ID_MAX  # the same limits as init data

__all__ = ["SignedContact", "parse_signed_contact", "CONTACT_MAX_AGE_S", "CONTACT_LEN_MAX"]

CONTACT_LEN_MAX = 4096
CONTACT_MAX_AGE_S = 600  # the Mini App posts it the moment the user taps "share"


@dataclass(frozen=True, slots=True, repr=False)
class SignedContact:
    user_id: int  # the Telegram user the phone number belongs to
    phone_number: str

    def __repr__(self) -> str:  # the phone number never reaches a log line
        return f"SignedContact(user_id={self.user_id})"


def parse_signed_contact(bot_token: str, text: object, *, now_s: float) -> SignedContact:
    """Verify and read the signed contact string; ``InvalidContact`` for anything but a fresh, genuine one."""
    if not isinstance(text, str) or not text or len(text) > CONTACT_LEN_MAX:
        raise InvalidContact("contact must be the signed string Telegram's requestContact returns")
    if not check_webapp_signature(bot_token, text):
        raise InvalidContact("the contact's signature is not Telegram's")
    fields = dict(parse_qsl(text, strict_parsing=True))  # parsed by the check already: valid here
    try:
        contact = json.loads(fields["contact"])
        auth_date = int(fields["auth_date"])
    except (KeyError, ValueError):
        raise InvalidContact("the contact string has no contact or auth_date") from None
    if not isinstance(contact, dict):
        raise InvalidContact("the contact is not an object")
    user_id, phone = contact.get("user_id"), contact.get("phone_number")
    if type(user_id) is not int or not 0 < user_id < TELEGRAM_ID_MAX or not isinstance(phone, str):
        raise InvalidContact("the contact carries no user id or phone number")
    age_s = now_s - auth_date
    if age_s > CONTACT_MAX_AGE_S or age_s < -CLOCK_SKEW_S:
        raise InvalidContact("the contact is too old; share it again")
    return SignedContact(user_id=user_id, phone_number=phone)
