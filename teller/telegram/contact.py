"""The bot's contact handler: a user shares their own phone number in their private chat with the bot.

Accepted only when it is the sender's own contact (``contact.user_id == from.id``) in the sender's
private chat (``chat.type == "private"`` and ``chat.id == from.id``); anything else is answered (a
foreign contact) or ignored (a group). The bot knows nothing of storage: it calls the injected
``record_contact(telegram_id, phone_number)``, which raises a ``TellerError`` to refuse. A contact
message delivered twice records the same number twice: harmless. The phone number is never logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiogram import F, Router
from aiogram.types import Message

from teller.errors import TellerError
from teller.log import get_logger
from teller.telegram.chats import in_own_private_chat

__all__ = ["ContactRecorder", "build_contact_router", "RECORDED_TEXT", "FOREIGN_TEXT", "REFUSED_TEXT"]

ContactRecorder = Callable[[int, str], Awaitable[None]]

RECORDED_TEXT = "Thanks, your mobile number is saved. Open the wallet to verify your national code."
FOREIGN_TEXT = "Please share your own contact (the button), not someone else's."
REFUSED_TEXT = {
    "invalid_contact": "An Iranian mobile number (+98 9…) is needed to use rials.",
    "identity_verified": "Your identity is already verified; its mobile number can no longer change.",
}
UNAVAILABLE_TEXT = "Your number could not be saved right now. Please try again in a minute."


def build_contact_router(*, record_contact: ContactRecorder) -> Router:
    router = Router(name="teller-contact")
    router.message.filter(in_own_private_chat)
    log = get_logger(component="bot")

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        sender, shared = message.from_user, message.contact
        if sender is None or shared is None:  # in_own_private_chat has seen a sender; mypy has not
            return
        if shared.user_id != sender.id:
            log.info("bot.contact_refused", code="foreign_contact")
            await message.answer(FOREIGN_TEXT)
            return
        try:
            await record_contact(sender.id, shared.phone_number)
        except TellerError as exc:
            log.info("bot.contact_refused", code=exc.code)
            await message.answer(REFUSED_TEXT.get(exc.code, UNAVAILABLE_TEXT))
            return
        await message.answer(RECORDED_TEXT)

    return router
