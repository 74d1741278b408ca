"""Telegram: the Bot API sender with its limits, message texts and the bot.

The local Bot API server for dev and tests is ``teller.telegram.botapi_server`` (not re-exported,
so ``python -m teller.telegram.botapi_server`` runs it cleanly).
"""

from teller.telegram.bot import (
    BalanceRow,
    BalancesFor,
    ClaimUpdate,
    build_dispatcher,
    in_own_private_chat,
    run_polling,
)
from teller.telegram.limits import SendLimiter
from teller.telegram.messages import balances_text, display_amount, message_for
from teller.telegram.sender import (
    LogSender,
    MessageSender,
    SendOutcome,
    SendResult,
    TelegramSender,
    build_sender,
)
from teller.telegram.session import make_bot
from teller.telegram.webhook import WEBHOOK_PATH, mount_webhook, set_webhook

__all__ = [
    "BalanceRow",
    "BalancesFor",
    "ClaimUpdate",
    "LogSender",
    "MessageSender",
    "SendLimiter",
    "SendOutcome",
    "SendResult",
    "TelegramSender",
    "WEBHOOK_PATH",
    "balances_text",
    "build_dispatcher",
    "build_sender",
    "display_amount",
    "in_own_private_chat",
    "make_bot",
    "message_for",
    "mount_webhook",
    "run_polling",
    "set_webhook",
]
