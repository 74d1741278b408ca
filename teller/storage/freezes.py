"""Freezes: what stops withdrawals until an operator acts, and the record of who lifted them and why.

A freeze has a ``freeze_key`` naming its cause (``withdrawal:{id}``, ``deposit:{id}``, ``invariants``),
at most one active freeze per key (a partial unique index), and a scope:

- ``all``: no withdrawal on any chain is signed (the ledger's own check failed);
- ``chain``: no new withdrawal on ``chain`` is signed (an incident on its hot wallet);
- ``user_asset``: ``user_id`` cannot withdraw ``asset`` (the ledger code, ``chain:SYMBOL``) on
  ``chain``, e.g. after a credited deposit of it was reorged out.

In-flight transactions are still followed to their end under every freeze: a freeze stops new
signatures and new requests, never the bookkeeping of what was already sent.

A freeze is written with ``freeze_write`` in the same transaction as the state that causes it (the
incident, the reversal), so the cause is never recorded without the freeze. It is lifted only by
``release`` with an operator's reason; the row stays, with ``resolved_at`` and the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from teller.errors import NotFound, WithdrawalsFrozen, WithdrawalsPaused
from teller.storage.store import Row, StaleWrite, Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Freezes", "SCOPES", "REASON_LEN_MAX", "ACTIVE_MAX"]

SCOPES = ("all", "chain", "user_asset")
REASON_LEN_MAX = 500
ACTIVE_MAX = 1_000     # active freezes listed at once (ops look long before there are that many)

_ACTIVE_FOR = (
    "SELECT * FROM freezes WHERE resolved_at IS NULL AND (scope = 'all' OR (scope = 'chain' AND chain = ?)"
    " OR (scope = 'user_asset' AND user_id = ? AND asset = ?)) ORDER BY id LIMIT 1")


def _refuse(rows: list[Row]) -> None:
    """The check of a withdrawal's hold: refused while a freeze covers it."""
    if not rows:
        return
    if rows[0]["scope"] == "user_asset":
        raise WithdrawalsFrozen()
    raise WithdrawalsPaused()


class Freezes:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- writes, for the caller's transaction --------------------------------------------------------
    @staticmethod
    def freeze_write(freeze_key: str, *, scope: str, reason: str, chain: str | None = None,
                     user_id: int | None = None, asset: str | None = None) -> Write:
        """Freeze (a no-op if the same key is already actively frozen)."""
        assert scope in SCOPES
        assert scope == "all" or chain is not None, "a chain or user_asset freeze names its chain"
        assert scope != "user_asset" or (user_id is not None and asset is not None)
        return Write(
            "INSERT INTO freezes (freeze_key, scope, chain, user_id, asset, reason, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (freeze_key) WHERE resolved_at IS NULL DO NOTHING",
            (freeze_key, scope, chain, user_id, asset, reason[:REASON_LEN_MAX], utc_now()))

    @staticmethod
    def release_write(freeze_key: str, *, resolution: str, reason: str) -> Write:
        """Lift the active freeze of ``freeze_key`` (touches no row if there is none)."""
        now = utc_now()
        return Write(
            "UPDATE freezes SET resolved_at = ?, resolution = ?, resolution_reason = ?"
            " WHERE freeze_key = ? AND resolved_at IS NULL", (now, resolution, reason[:REASON_LEN_MAX], freeze_key))

    @staticmethod
    def hold_check(*, chain: str, user_id: int, asset: str) -> Write:
        """A check for a withdrawal hold's transaction: refused (403 or 503) while a freeze covers it."""
        return Write(_ACTIVE_FOR, (chain, user_id, asset), check=_refuse)

    # -- reads ---------------------------------------------------------------------------------------
    async def active(self) -> list[Row]:
        return await self._store.fetch_all(
            "SELECT * FROM freezes WHERE resolved_at IS NULL ORDER BY id LIMIT ?", ACTIVE_MAX)

    async def get(self, freeze_id: int) -> Row | None:
        return await self._store.fetch_one("SELECT * FROM freezes WHERE id = ?", freeze_id)

    async def blocking(self, *, chain: str, user_id: int = -1, asset: str = "") -> Row | None:
        """The first active freeze that stops a withdrawal of ``asset`` by ``user_id`` on ``chain``
        (without a user: one that stops the whole chain)."""
        rows = await self._store.fetch_all(_ACTIVE_FOR, chain, user_id, asset)
        return rows[0] if rows else None

    async def frozen_user_assets(self, chain: str) -> set[tuple[int, str]]:
        """(user id, asset code) pairs frozen on ``chain``: their pending withdrawals are not signed."""
        rows = await self._store.fetch_all(
            "SELECT user_id, asset FROM freezes WHERE resolved_at IS NULL AND scope = 'user_asset'"
            " AND chain = ? LIMIT ?", chain, ACTIVE_MAX)
        return {(int(r["user_id"]), r["asset"]) for r in rows}

    async def release(self, freeze_id: int, *, reason: str, resolution: str = "released") -> Row:
        """An operator lifts a freeze by id, with their reason. NotFound if it is not active."""
        row = await self.get(freeze_id)
        if row is None or row["resolved_at"] is not None:
            raise NotFound("no such active freeze")
        try:
            await self._store.run_atomic([Write(
                "UPDATE freezes SET resolved_at = ?, resolution = ?, resolution_reason = ?"
                " WHERE id = ? AND resolved_at IS NULL", (utc_now(), resolution, reason[:REASON_LEN_MAX], freeze_id),
                expect_rows=1)])
        except StaleWrite:
            raise NotFound("no such active freeze") from None
        released = await self.get(freeze_id)
        assert released is not None
        return released
