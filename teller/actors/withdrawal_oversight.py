"""What keeps a withdrawal's trouble its own and waits for an operator: the WithdrawalActor's oversight.

Kept apart from the actor's steps (``teller.actors.withdrawal_actor``), which read as the sequence of a
tick, so that what may stop, park, freeze or refund on an operator's word reads in one place:

- which pending rows may be signed now (freezes; an asset no longer configured parks its row);
- one row's failure parks that row alone, with its reason and a backoff; a freeze or a lost race is
  re-read next tick; the node being down fails the tick, as it fails every row;
- an incident: the chain disagrees with our records (a used nonce with no receipt of ours for
  ``RECEIPT_MISSES_INCIDENT_MIN`` ticks, two receipts for one nonce, a receipt without the payment). The
  row waits, the chain's new withdrawals freeze, ops are alerted; never a refund on a guess;
- receipts as proof: every attempt asked, and only a receipt in the node's own block at that height;
- an operator's decision (``resolve``), refused when the node contradicts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from teller.actors.withdrawal_steps import payment_problem, refund, settle
from teller.assets import Asset, AssetRegistry
from teller.chain.types import Receipt
from teller.errors import ChainUnavailable, Conflict, NotFound, WithdrawalsFrozen, WithdrawalsPaused
from teller.storage import StaleWrite, Write
from teller.storage.freezes import Freezes
from teller.storage.store import Row, utc_now
from teller.storage.withdrawals import Withdrawals

if TYPE_CHECKING:
    from teller.chain.client import ChainClient
    from teller.config import ChainSettings
    from teller.storage import Store

__all__ = ["Oversight", "RECEIPT_MISSES_INCIDENT_MIN", "PARK_BACKOFF_MAX_S"]

RECEIPT_MISSES_INCIDENT_MIN = 5  # ticks a used nonce may show no receipt of ours before it is an incident
PARK_BACKOFF_MAX_S = 300.0    # a parked row is retried at most this long after its last failure
T = TypeVar("T")


class Oversight:
    """Mixed into WithdrawalActor, whose state it reads (the chain, the store, the node, the hot wallet)."""

    _chain: ChainSettings
    _store: Store
    _repo: Withdrawals
    _client: ChainClient
    _hot: str
    _paused: bool
    _receipt_misses: dict[int, int]
    _assets: AssetRegistry
    _signer: Callable[[], Any]
    _asset: Callable[[Row], Asset]
    log: Any

    async def _hot_address(self) -> str:
        if not self._hot:
            self._hot = (await self._signer().call("hot_wallet_address")).lower()
        return self._hot

    async def resolve(self, withdrawal_id: int, *, action: str, reason: str) -> Row:
        """An operator's decision on a withdrawal that waits for one, serialized with this chain's ticks:
        ``refund`` (the money did not leave; or the row was never signed) or ``settle`` (the operator found
        the payment). The node is asked first, and a decision it contradicts is refused (409): a refund
        while any attempt shows the payment or our nonce is not yet used, a settle while a receipt shows
        no payment. The row's freeze is lifted after, with the operator's reason."""
        row = await self._repo.get(withdrawal_id)
        if row is None or row["chain"] != self._chain.name:
            raise NotFound("no such withdrawal")
        if row["status"] not in ("pending", "signed", "broadcast"):
            raise Conflict(f"the withdrawal is {row['status']} already")
        asset = self._asset(row)
        operator_reason = f"{'refunded' if action == 'refund' else 'settled'} by an operator: {reason}"
        if action == "refund" and row["status"] == "pending":
            # never signed: proof enough, if it is still unsigned in the very transaction that refunds it
            guard = Write("UPDATE withdrawals SET updated_at = ? WHERE id = ? AND status = 'pending' AND nonce IS NULL",
                          (utc_now(), withdrawal_id), expect_rows=1)
            await refund(self._store, row, asset, reason=operator_reason, extra_writes=[guard])
        elif not row["incident_reason"]:
            raise Conflict("only a withdrawal in an incident (or never signed) waits for an operator")
        else:
            await self._check_decision(row, asset, action)
            if action == "refund":
                await refund(self._store, row, asset, reason=operator_reason)
            else:
                await settle(self._store, row, asset, tx_hash=row["tx_hash"] or "")
        await self._repo.run([Freezes.release_write(f"withdrawal:{withdrawal_id}", resolution=action, reason=reason)])
        self.log.warning("withdrawals.resolved_by_operator", withdrawal_id=withdrawal_id, action=action,
                         reason=reason[:200])
        resolved = await self._repo.get(withdrawal_id)
        assert resolved is not None
        return resolved

    async def _check_decision(self, row: Row, asset: Asset, action: str) -> None:
        await self._hot_address()
        _, receipts = await self._receipts(row)
        paid = [r for r in receipts if r.succeeded and payment_problem(row, asset, r, hot_address=self._hot) is None]
        if action == "refund":
            if paid:
                raise Conflict(f"the node shows {paid[0].tx_hash} paid this withdrawal: it cannot be refunded")
            if await self._client.get_nonce(self._hot) <= int(row["nonce"]):
                raise Conflict("our nonce is not used on chain yet: a signed transaction of ours can still be mined")
        elif not paid and receipts:
            raise Conflict("the node's receipt shows no payment: it cannot be settled")

    async def _signable(self, rows: list[Row]) -> list[Row]:
        """The pending rows that may be signed now: none while a freeze stops the chain (in-flight ones
        are still followed to their end), none of a frozen user's asset, none whose asset is gone."""
        if not rows:
            return rows
        freezes = Freezes(self._store)
        paused = await freezes.blocking(chain=self._chain.name)
        if paused is not None:
            if not self._paused:
                self.log.error("withdrawals.paused", chain=self._chain.name, freeze_id=paused["id"],
                               freeze_key=paused["freeze_key"])
            self._paused = True
            return []
        self._paused = False
        frozen = await freezes.frozen_user_assets(self._chain.name)
        signable = []
        for row in rows:
            if (int(row["user_id"]), f"{row['chain']}:{row['asset']}") in frozen:
                continue
            if self._assets.get(f"{row['chain']}:{row['asset']}") is None:
                await self._park(row, "the asset is not configured on this chain any more")
                continue
            signable.append(row)
        return signable

    def _freeze_check(self, row: Row) -> Write:
        """For the unit that persists a first signature: refused while a freeze covers the row, so a
        freeze another process commits after ``_signable`` read still stops the signature (and the send)."""
        return Freezes.hold_check(chain=row["chain"], user_id=int(row["user_id"]), asset=f"{row['chain']}:{row['asset']}")

    # -- one row's failure stays that row's ----------------------------------------------------------
    async def _isolated(self, row: Row, step: Awaitable[T]) -> T | None:
        """Run one row's step; its answer is truthy when the row moved on. The node failing (``ChainUnavailable``) fails the tick, as it fails every
        row; a lost race is re-read next tick; anything else parks this row alone, with its reason, and
        the queue goes on."""
        try:
            result = await step
        except (ChainUnavailable, asyncio.CancelledError):
            raise
        except (StaleWrite, WithdrawalsFrozen, WithdrawalsPaused):  # a lost race, or a freeze: re-read next tick
            return None
        except Exception as exc:  # noqa: BLE001 - one row's failure never stops the others
            await self._park(row, f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")
            return None
        if result and row.get("failures"):  # un-parked by progress only, not by a step that merely did not raise
            await self._repo.run([Withdrawals.unpark(withdrawal_id=row["id"])])
        return result or None

    async def _park(self, row: Row, error: str) -> None:
        failures = int(row.get("failures") or 0) + 1
        delay_s = min(PARK_BACKOFF_MAX_S, self._chain.poll_interval_s * 2 ** min(failures, 16))
        await self._repo.run([Withdrawals.park(withdrawal_id=row["id"], error=error,
                                               retry_at=utc_now() + timedelta(seconds=delay_s))])
        self.log.error("withdrawals.parked", withdrawal_id=row["id"], chain=row["chain"], failures=failures,
                       retry_in_s=round(delay_s, 1), error=error[:200])

    async def _incident(self, row: Row, reason: str) -> None:
        """The chain disagrees with our records: the row waits for an operator, the chain's new
        withdrawals freeze, ops are alerted. Never a refund."""
        if row.get("incident_reason"):
            return
        try:
            await self._repo.run(Withdrawals.incident(withdrawal_id=row["id"], chain=row["chain"], reason=reason))
        except StaleWrite:
            return  # marked already (another tick or instance)
        self.log.error("withdrawals.incident", withdrawal_id=row["id"], chain=row["chain"], nonce=row["nonce"],
                       reason=reason)

    async def _receipts(self, row: Row) -> tuple[list[Row], list[Receipt]]:
        """Every attempt of the row, and the receipts the node has for them (all asked, none skipped)."""
        attempts = await self._repo.attempts(row["id"])
        receipts = [r for r in [await self._client.get_receipt(a["tx_hash"]) for a in attempts] if r is not None]
        return attempts, receipts

    async def _canonical(self, receipt: Receipt) -> bool:
        """Is the receipt's block the node's block at that height? (A receipt from a dropped fork is no proof.)"""
        block = await self._client.get_block(receipt.block_number, full_transactions=False)
        return block is not None and block.block_hash == receipt.block_hash

    async def _no_receipt(self, row: Row, *, attempts: int) -> None:
        """The nonce is used, yet no receipt of ours: wait a few ticks (a node behind a load balancer
        answers null for a moment), then it is an incident: our records are incomplete, the node lies,
        or the key is used elsewhere. The hold stays; an operator decides."""
        misses = self._receipt_misses[row["id"]] = self._receipt_misses.get(row["id"], 0) + 1
        if misses < max(RECEIPT_MISSES_INCIDENT_MIN, self._chain.confirmations):
            self.log.warning("withdrawals.receipt_missing", withdrawal_id=row["id"], nonce=row["nonce"],
                             attempts=attempts, misses=misses)
            return
        await self._incident(row, f"the hot wallet's nonce {row['nonce']} is used on chain, but none of our"
                                  f" {attempts} signed transactions for it has a receipt")
