"""Where the bot may speak: only in the sender's own private chat.

A group would see the sender's balances, and an update naming a victim as ``from`` and the attacker's
chat as ``chat`` would carry the victim's balances to the attacker. Every router of the bot puts
:func:`in_own_private_chat` on its observers (``router.message.filter(in_own_private_chat)``).
"""

from __future__ import annotations

from aiogram.types import CallbackQuery, Message

__all__ = ["in_own_private_chat"]


def in_own_private_chat(event: Message | CallbackQuery) -> bool:
    """The filter on every handler: the update comes from a private chat whose id is the sender's own.

    Exported so that a router added elsewhere puts it on its observers too
    (``router.message.filter(in_own_private_chat)``)."""
    message = event.message if isinstance(event, CallbackQuery) else event
    sender = event.from_user
    if message is None or sender is None:  # a channel post, a callback from an inline message
        return False
    return message.chat.type == "private" and message.chat.id == sender.id
