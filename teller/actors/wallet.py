"""WalletActor[user_id]: one per user, activated on demand, serializing that user's money moves.

The wallet holds no balance of its own: the ledger is the truth. What it adds is order: one money
command at a time per user, so that a user's withdrawal checks and holds never race each other in
this process (the ledger's constraints still guard against other processes).
A command is an async function of (store, user_id) defined by the flow that owns it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from teller.errors import TellerError
from teller.runtime import AsyncioActor

__all__ = ["WalletActor", "WalletCommand"]

T = TypeVar("T")
WalletCommand = Callable[[Any, int], Awaitable[T]]
WALLET_MAILBOX_MAX = 1_000


class WalletActor(AsyncioActor):
    expected_errors = (TellerError,)
    mailbox_max = WALLET_MAILBOX_MAX

    def __init__(self, user_id: int, store: Any) -> None:
        super().__init__()
        self.user_id = user_id
        self.store = store

    async def run(self, command: WalletCommand[T]) -> T:
        """Run one money command for this user, alone."""
        return await command(self.store, self.user_id)
