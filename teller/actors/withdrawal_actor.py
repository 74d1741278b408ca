"""WithdrawalActor[chain]: pays out a chain's withdrawals from its hot wallet, safe against every crash.

It owns the hot wallet's nonces. Each tick (every ``poll_interval_s``, or sooner when poked) it reads
the chain's unfinished withdrawals from the DB and moves each one step on, from its persisted state
only, so a restart resumes exactly where the last instance stopped:

- ``pending``: sign (the Signer re-reads the row) with the next durable nonce and EIP-1559 fees from
  ``eth_feeHistory`` (capped), then in ONE transaction take the nonce, bind it to the withdrawal and
  store the raw transaction and its hash (``withdrawal_attempts``). Only then broadcast. A tick's
  new withdrawals go together: consecutive nonces, one signer call, one transaction, one JSON-RPC
  batch of sends, one transaction recording them sent; a race with another instance narrows the batch.
- ``signed``: broadcast the stored bytes. "Already known" counts as sent; "nonce too low" is resolved
  by the receipts of every hash we signed for that nonce. The first acceptance moves the row to
  ``broadcast`` with a ``withdrawal.broadcast`` event (a conditional update: once).
- ``broadcast``: once the chain's mined nonce passes the withdrawal's, look up the receipts of all its
  hashes (every one; whichever mined counts); at ``confirmations`` settle the hold if the receipt shows
  the payment (status 1 and, for a token, a Transfer log of the exact amount from the hot wallet to the
  recipient), void it if our own transaction reverted. Not mined after ``replace_after_s``: sign a
  replacement with the same nonce and fees up >= 10 % (at most ``ATTEMPTS_PER_WITHDRAWAL_MAX``). If the
  node's pool lost it (the pending nonce is at or below ours: a gap), send the bytes again.

Refund only with proof; one row's trouble stays that row's; a freeze stops new signatures, never the
following of what was sent. Those rules, incidents and operator decisions live in ``Oversight``
(``teller.actors.withdrawal_oversight``), mixed in here.

Nonces: the DB's next nonce is raised to the chain's mined count each tick (someone else's
transaction never makes us reuse a nonce) and only ever taken together with a persisted signed
transaction, so we are never ahead of what the chain will accept, and gaps are refilled by resending.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from teller.actors.signer import SigningRefused, WithdrawalSigning
from teller.actors.withdrawal_oversight import Oversight
from teller.actors.withdrawal_steps import event_payload, payment_problem, refund, settle
from teller.assets import Asset, AssetRegistry
from teller.chain.client import ChainClient
from teller.chain.types import FeeSuggestion, SendOutcome
from teller.config import ChainSettings
from teller.errors import TellerError
from teller.events.schema import EventType
from teller.runtime import AsyncioActor, Call, Handle
from teller.storage import Event, Outbox, StaleWrite, Store, UniqueViolation, Write
from teller.storage.store import Row, utc_now
from teller.storage.withdrawals import ATTEMPTS_PER_WITHDRAWAL_MAX, Withdrawals

__all__ = ["WithdrawalActor", "FEE_BUMP_PERCENT", "CrashHook"]

FEE_BUMP_PERCENT = 10         # the least bump nodes accept for a same-nonce replacement
FEE_BUMP_MARGIN_PERCENT = 2   # above it, so rounding never lands exactly on the node's floor
SIGNS_PER_TICK_MAX = 100      # new withdrawals signed per tick; the rest wait for the next one
REJECTIONS_PARK_AFTER = 5     # sends of one row the node rejected in a row before it is parked
MAILBOX_MAX = 1_000
# Send outcomes after which the transaction counts as sent. Underpriced: another of our transactions
# holds the nonce in the pool. Nonce too low: some transaction used the nonce; receipts tell which.
_COUNTS_AS_SENT = frozenset((SendOutcome.ACCEPTED, SendOutcome.ALREADY_KNOWN, SendOutcome.REPLACEMENT_UNDERPRICED,
                             SendOutcome.NONCE_TOO_LOW))
CrashHook = Callable[[str], None]  # tests: called with a step name; a test's hook kills the process there


class BroadcastRejected(Exception):
    """The node keeps refusing a row's signed transaction: the row is parked with the node's reason."""


class WithdrawalActor(Oversight, AsyncioActor):
    expected_errors = (TellerError,)
    mailbox_max = MAILBOX_MAX

    def __init__(self, *, chain: ChainSettings, store: Store, client: ChainClient, signer: Callable[[], Handle],
                 assets: AssetRegistry, crash_hook: CrashHook | None = None) -> None:
        super().__init__()
        self._chain = chain
        self._store = store
        self._repo = Withdrawals(store)
        self._client = client
        self._signer = signer
        self._assets = assets
        self._crash_hook = crash_hook
        self._hot: str = ""
        self._timer: asyncio.TimerHandle | None = None
        self._tick_queued = False
        self._paused = False
        self._receipt_misses: dict[int, int] = {}  # withdrawal id -> ticks its used nonce had no receipt of ours
        self._rejections: dict[int, int] = {}      # withdrawal id -> rejected sends in a row
        self.ticks = 0

    def on_start(self) -> None:
        # The signer is asked on the first tick, not here: during the tree's start it may not answer yet.
        self._schedule(0.0)

    def on_stop(self) -> None:
        self._cancel_timer()

    def on_failure(self, *_: Any) -> None:
        self._cancel_timer()

    # -- scheduling ----------------------------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, delay_s: float) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_later(delay_s, self.poke)

    def poke(self) -> None:
        """Ask for a tick soon (a new withdrawal was accepted). Collapses with a tick already queued."""
        if self._tick_queued or self.actor_stopped.is_set():
            return
        self._tick_queued = True
        self.actor_ref.tell(Call("tick", (), {}))

    async def tick(self) -> None:
        self._tick_queued = False
        try:
            await self._advance()
        except TellerError as exc:  # the node is down or refused: the next tick tries again
            self.log.warning("withdrawals.tick_failed", error=exc.code, message=exc.message)
        finally:
            self.ticks += 1
            self._schedule(self._chain.poll_interval_s)

    def _crash_point(self, step: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(step)

    # -- one pass over the unfinished withdrawals ----------------------------------------------------
    async def _advance(self) -> None:
        repo, client, chain = self._repo, self._client, self._chain.name
        in_flight = await repo.unfinished(chain, in_flight=True)
        pending = await repo.unfinished(chain, in_flight=False, limit=SIGNS_PER_TICK_MAX)
        if not in_flight and not pending:
            return
        if not self._hot:
            await self._hot_address()
            for row in await repo.troubled(chain):  # once per start: an alert lost to a kill is raised again
                if row["incident_reason"]:
                    self.log.error("withdrawals.incident_open", withdrawal_id=row["id"], chain=chain,
                                   nonce=row["nonce"], reason=row["incident_reason"])
        mined_nonce = await client.get_nonce(self._hot)
        await repo.raise_nonce_floor(chain, self._hot, mined_nonce)
        fees: FeeSuggestion | None = None
        if in_flight:
            head = await client.block_number()
            pool_nonce = await client.get_nonce(self._hot, pending=True)
            unmined = [r for r in in_flight if int(r["nonce"]) >= mined_nonce]
            latest = await repo.latest_attempts([r["id"] for r in unmined])
            for row in in_flight:
                nonce = int(row["nonce"])
                if nonce < mined_nonce:
                    await self._isolated(row, self._resolve_mined(row, head=head))
                    continue
                self._receipt_misses.pop(row["id"], None)
                attempt = latest.get(row["id"])
                if attempt is None:
                    continue  # impossible by construction (nonce and attempt are one transaction)
                age_s = (utc_now() - attempt["created_at"]).total_seconds()
                if age_s >= self._chain.replace_after_s:  # stuck (not mined, or never accepted): re-price
                    fees = fees or await self._fees()
                    if await self._isolated(row, self._replace(row, attempt, fees)) is not None:
                        continue
                    # not re-priced (at the fee cap, the attempt limit, a lost race): fall through to a resend
                if row["status"] == "signed" or nonce >= pool_nonce:
                    # never sent, or the node's pool lost it (a gap below later nonces): send the bytes again
                    await self._isolated(row, self._broadcast(row, attempt["tx_hash"], attempt["raw_tx"]))
        pending = await self._signable(pending)
        if pending:
            fees = fees or await self._fees()
            await self._broadcast_new(await self._sign_new(pending, fees))

    async def _fees(self) -> FeeSuggestion:
        return await self._client.suggest_fees(max_fee_per_gas_cap_wei=self._chain.max_fee_per_gas_cap_wei)

    def _asset(self, row: Row) -> Asset:
        return self._assets.on_chain(row["chain"], row["asset"])

    def _signing(self, row: Row, *, nonce: int, max_fee_wei: int, tip_wei: int) -> WithdrawalSigning:
        return WithdrawalSigning(
            withdrawal_id=row["id"], chain=row["chain"], asset=row["asset"], to_address=row["to_address"],
            amount_minor=row["amount_minor"], nonce=nonce, max_fee_per_gas_wei=max_fee_wei,
            max_priority_fee_per_gas_wei=tip_wei)

    # -- steps ---------------------------------------------------------------------------------------
    async def _sign_new(self, rows: list[Row], fees: FeeSuggestion) -> list[tuple[Row, str, str]]:
        """Sign new withdrawals with consecutive nonces and persist them all in one transaction (one
        signer call, one commit, instead of one each). A refusal or a race: see ``_after_race``."""
        chain = self._chain.name
        nonce = await self._repo.next_nonce(chain, self._hot)
        assert nonce is not None, "raise_nonce_floor runs before any signing"
        requests = [self._signing(row, nonce=nonce + i, max_fee_wei=fees.max_fee_per_gas_wei,
                                  tip_wei=fees.max_priority_fee_per_gas_wei) for i, row in enumerate(rows)]
        try:
            txs = await self._signer().call("sign_withdrawals", requests, withdrawals=self._repo, chain=self._chain)
        except SigningRefused:
            # usually a race: another instance signed some of these since we read them
            return await self._after_race(rows, fees, refused=True)
        writes = []
        for row, request, tx in zip(rows, requests, txs):
            writes.append(self._freeze_check(row))  # a freeze committed since _signable read them stops all
            writes += Withdrawals.first_signature(
                withdrawal_id=row["id"], chain=chain, from_address=self._hot, nonce=request.nonce,
                tx_hash=tx.tx_hash, raw_tx="0x" + tx.raw.hex(), max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
                max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei)
        try:
            await self._repo.run(writes)
        except StaleWrite:  # a row or the nonce moved: nothing was persisted, nothing sent
            return await self._after_race(rows, fees, refused=False)
        for row, request, tx in zip(rows, requests, txs):
            self.log.info("withdrawals.signed", withdrawal_id=row["id"], nonce=request.nonce, tx_hash=tx.tx_hash)
        self._crash_point("after_sign")
        return [({**row, "status": "signed"}, tx.tx_hash, "0x" + tx.raw.hex()) for row, tx in zip(rows, txs)]

    async def _after_race(self, rows: list[Row], fees: FeeSuggestion, *, refused: bool) -> list[tuple[Row, str, str]]:
        """Go on with the rows still unsigned (another instance took the others). If none moved: a
        refusal is signed one at a time, which finds the refused row and parks it alone; a moved
        nonce (another instance's own withdrawals) waits for the next tick."""
        current = await self._repo.get_many([row["id"] for row in rows])
        unsigned = [row for row in rows if (now := current.get(row["id"])) is not None
                    and now["status"] == "pending" and now["nonce"] is None]
        if len(unsigned) < len(rows):
            still = {row["id"] for row in unsigned}
            self.log.warning("withdrawals.sign_raced", withdrawal_ids=[r["id"] for r in rows if r["id"] not in still])
            return await self._sign_new(unsigned, fees) if unsigned else []
        if not refused:
            self.log.warning("withdrawals.sign_raced", nonce_moved=True)
            return []
        signed = []
        for row in rows:  # one at a time: the refused row is parked, the others are signed
            one = await self._isolated(row, self._sign_first(row, fees))
            if one is not None:
                signed.append(({**row, "status": "signed"}, *one))
        return signed

    async def _broadcast_new(self, signed: list[tuple[Row, str, str]]) -> None:
        """Send freshly signed transactions in one JSON-RPC batch and record the sent ones in one
        transaction; if any row moved meanwhile, record them one at a time (each at most once)."""
        if not signed:
            return
        results = await self._client.send_raw_transactions([bytes.fromhex(raw[2:]) for _, _, raw in signed])
        self._crash_point("after_broadcast")
        sent = []
        for (row, tx_hash, _), result in zip(signed, results):
            if result.outcome in _COUNTS_AS_SENT:
                sent.append((row, tx_hash))
            else:
                self.log.warning("withdrawals.broadcast_rejected", withdrawal_id=row["id"], tx_hash=tx_hash,
                                 reason=result.reason[:200])
        try:
            await self._repo.run([write for row, tx_hash in sent for write in self._broadcast_writes(row, tx_hash)])
        except StaleWrite:
            for row, tx_hash in sent:
                await self._mark_broadcast(row, tx_hash)
            return
        for row, tx_hash in sent:
            self.log.info("withdrawals.broadcast", withdrawal_id=row["id"], tx_hash=tx_hash)

    async def _sign_first(self, row: Row, fees: FeeSuggestion) -> tuple[str, str] | None:
        chain = self._chain.name
        nonce = await self._repo.next_nonce(chain, self._hot)
        assert nonce is not None, "raise_nonce_floor runs before any signing"
        signed = await self._signer().call(
            "sign_withdrawal", self._signing(row, nonce=nonce, max_fee_wei=fees.max_fee_per_gas_wei,
                                             tip_wei=fees.max_priority_fee_per_gas_wei),
            withdrawals=self._repo, chain=self._chain)
        raw_hex = "0x" + signed.raw.hex()
        try:
            await self._repo.run([self._freeze_check(row), *Withdrawals.first_signature(
                withdrawal_id=row["id"], chain=chain, from_address=self._hot, nonce=nonce, tx_hash=signed.tx_hash,
                raw_tx=raw_hex, max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
                max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei)])
        except StaleWrite:
            # the nonce moved or the row did (another instance got there): nothing was sent; re-read next tick
            self.log.warning("withdrawals.sign_raced", withdrawal_id=row["id"], nonce=nonce)
            return None
        self.log.info("withdrawals.signed", withdrawal_id=row["id"], nonce=nonce, tx_hash=signed.tx_hash)
        self._crash_point("after_sign")
        return signed.tx_hash, raw_hex

    async def _broadcast(self, row: Row, tx_hash: str, raw_hex: str) -> bool:
        """Send stored bytes; True when the node took them (or already had them)."""
        result = await self._client.send_raw_transaction(bytes.fromhex(raw_hex[2:]))
        self._crash_point("after_broadcast")
        if result.outcome in _COUNTS_AS_SENT:
            await self._mark_broadcast(row, tx_hash)
        else:
            # REJECTED (e.g. the hot wallet lacks gas money): keep the nonce and the bytes. After a few
            # tries the row is parked with the node's reason (ops see it) and retried with backoff.
            rejections = self._rejections[row["id"]] = self._rejections.get(row["id"], 0) + 1
            self.log.warning("withdrawals.broadcast_rejected", withdrawal_id=row["id"], tx_hash=tx_hash,
                             reason=result.reason[:200], rejections=rejections)
            if rejections >= REJECTIONS_PARK_AFTER:
                self._rejections.pop(row["id"], None)
                raise BroadcastRejected(f"the node rejects the signed transaction: {result.reason[:200]}")
            return False
        self._rejections.pop(row["id"], None)
        return True

    async def _mark_broadcast(self, row: Row, tx_hash: str) -> None:
        if row["status"] != "signed":
            await self._repo.run([Withdrawals.mark_attempt_broadcast(withdrawal_id=row["id"], tx_hash=tx_hash)])
            return
        try:
            await self._repo.run(self._broadcast_writes(row, tx_hash))
        except StaleWrite:
            pass  # already broadcast (an earlier tick or instance): its event is written already
        else:
            self.log.info("withdrawals.broadcast", withdrawal_id=row["id"], tx_hash=tx_hash)

    def _broadcast_writes(self, row: Row, tx_hash: str) -> list[Write]:
        """``signed`` -> ``broadcast`` with its event; a StaleWrite if the row moved already (event once)."""
        event = Event(EventType.WITHDRAWAL_BROADCAST.value, event_payload(row, self._asset(row), tx_hash=tx_hash))
        return [*Withdrawals.mark_broadcast(withdrawal_id=row["id"], tx_hash=tx_hash), Outbox.write(event)]

    async def _replace(self, row: Row, latest: Row, fees: FeeSuggestion) -> bool:
        """Re-price a stuck transaction (same nonce). False when not allowed or raced: the caller resends."""
        old_max, old_tip = latest["max_fee_per_gas_wei"], latest["max_priority_fee_per_gas_wei"]
        bump = 100 + FEE_BUMP_PERCENT + FEE_BUMP_MARGIN_PERCENT
        max_fee = max(fees.max_fee_per_gas_wei, -(-old_max * bump // 100))
        tip = max(fees.max_priority_fee_per_gas_wei, -(-old_tip * bump // 100))
        cap = self._chain.max_fee_per_gas_cap_wei
        if await self._repo.attempt_count(row["id"]) >= ATTEMPTS_PER_WITHDRAWAL_MAX:
            self.log.warning("withdrawals.replace_limit", withdrawal_id=row["id"], attempts=ATTEMPTS_PER_WITHDRAWAL_MAX)
            return False  # enough signed versions of this nonce: resend the latest, and let ops look
        if max_fee > cap:
            self.log.warning("withdrawals.replace_capped", withdrawal_id=row["id"], cap_wei=cap)
            return False  # a bump past the cap is not allowed: resend, and wait for the base fee to fall
        tip = min(tip, max_fee)
        nonce = int(row["nonce"])
        signed = await self._signer().call(
            "sign_withdrawal", self._signing(row, nonce=nonce, max_fee_wei=max_fee, tip_wei=tip),
            withdrawals=self._repo, chain=self._chain)
        raw_hex = "0x" + signed.raw.hex()
        try:
            await self._repo.run(Withdrawals.replacement(
                withdrawal_id=row["id"], chain=self._chain.name, nonce=nonce, tx_hash=signed.tx_hash, raw_tx=raw_hex,
                max_fee_per_gas_wei=max_fee, max_priority_fee_per_gas_wei=tip))
        except (StaleWrite, UniqueViolation):  # another instance replaced it (the same bytes: the same hash)
            return False
        self.log.info("withdrawals.replaced", withdrawal_id=row["id"], nonce=nonce, tx_hash=signed.tx_hash,
                      replaces=latest["tx_hash"], max_fee_per_gas_wei=max_fee)
        self._crash_point("after_replace_persist")
        await self._broadcast(row, signed.tx_hash, raw_hex)
        return True  # a new version is on disk and was sent; a rejection raised or is counted by _broadcast

    async def _resolve_mined(self, row: Row, *, head: int) -> bool:
        """The withdrawal's nonce is used on chain: find which of our transactions mined (every one of
        them is asked). A null receipt means "not known yet" (a lagging node), never "not mined".
        True when the row moved on."""
        attempts, receipts = await self._receipts(row)
        if not receipts:
            await self._no_receipt(row, attempts=len(attempts))
            return False
        self._receipt_misses.pop(row["id"], None)
        if len(receipts) > 1:  # one nonce, two of our transactions mined: the node contradicts itself
            await self._incident(row, f"{len(receipts)} of our transactions for nonce {row['nonce']} have receipts")
            return False
        (receipt,) = receipts
        asset = self._asset(row)
        attempt = next(a for a in attempts if a["tx_hash"] == receipt.tx_hash)
        if row["status"] == "signed":
            # sent by an instance that died before recording it: the broadcast (and its event) happened
            await self._mark_broadcast(row, receipt.tx_hash)
        if attempt["status"] != "mined":
            await self._repo.run(Withdrawals.mark_mined(
                withdrawal_id=row["id"], tx_hash=receipt.tx_hash, block_number=receipt.block_number))
        self._crash_point("after_receipt")
        if head - receipt.block_number + 1 < self._chain.confirmations:
            return True
        if not await self._canonical(receipt):
            self.log.warning("withdrawals.receipt_off_chain", withdrawal_id=row["id"], tx_hash=receipt.tx_hash,
                             block_number=receipt.block_number)
            return False  # asked again next tick, once the node agrees with itself
        if receipt.from_address.lower() != self._hot:
            await self._incident(row, f"the receipt of {receipt.tx_hash} is not from the hot wallet")
            return False
        if not receipt.succeeded:  # proof: our own transaction reverted, confirmations deep, on the chain
            await refund(self._store, row, asset, reason="the transaction reverted on chain",
                         crash_point=self._crash_point)
            self.log.info("withdrawals.reverted", withdrawal_id=row["id"], tx_hash=receipt.tx_hash)
            return True
        problem = payment_problem(row, asset, receipt, hot_address=self._hot)
        if problem is not None:
            await self._incident(row, problem)
            return False
        await settle(self._store, row, asset, tx_hash=receipt.tx_hash, crash_point=self._crash_point)
        self.log.info("withdrawals.confirmed", withdrawal_id=row["id"], tx_hash=receipt.tx_hash)
        return True

