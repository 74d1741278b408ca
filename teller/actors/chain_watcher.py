"""ChainWatcher[chain]: follows one EVM chain, records deposits as seen, credits them once confirmed.

One pass (``scan_once``), every ``poll_interval_s`` (a ticker task asks the actor; never more than one
pass queued, never work inside someone else's callback):

1. Read the node's head, then the checkpoint (number + hash) from the database - always from the
   database, so a restarted instance resumes exactly where the last commit left it - then the deposit
   addresses created since the last pass. Addresses are read AFTER the head: any block at or below it
   was mined before this read, so a deposit in it went to an address that was already stored.
2. If the node's block at the checkpoint's height is not ours (same-height reorg) or the next block
   does not link to it (parent-hash mismatch): walk back through the stored window of recent hashes to
   the common ancestor, orphan the pending deposits above it (one ``deposit.orphaned`` event each) and
   rewind the checkpoint - one transaction - then rescan from there.
3. Fetch up to ``catchup_range_blocks`` blocks (full, for native transfers) and keep the prefix that
   links to the checkpoint. Transfer logs: by range (``eth_getLogs`` fromBlock..toBlock) for blocks at
   least ``TIP_MARGIN_BLOCKS`` below the head (every node of a pool has those), by block hash for the
   rest (a node without the block answers "unknown block", never a silent empty list); every log must
   carry the hash of the block we verified, or the pass is retried.
4. One transaction: new deposits ``pending`` + ``deposit.seen`` events, the window, the checkpoint
   (moved only from the value read in step 1: a conditional update).
5. Credit every pending deposit at least ``confirmations`` deep below the checkpoint, each through its
   user's WalletActor, all submitted at once so the ledger's group commit batches them: ledger transfer
   ``chain:{chain}:{asset}`` -> ``user:{id}:{asset}``, key ``deposit:{chain}:{tx}:{log_index}``, plus
   the row marked credited from that very block, plus ``deposit.credited`` - one transaction.

If the process dies anywhere, the next instance re-reads the checkpoint: a block range not committed
is scanned again (deposits are unique by (chain, tx, log_index)), and a credit is keyed, so a replay
is a no-op. RPC failures (``ChainUnavailable``) and lost races (``StaleWrite``) back off and retry
without crashing; anything else crashes the actor and its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from teller.actors.deposit_scan import (
    ChainAssets,
    WatcherStatus,
    deposit_event,
    find_native,
    find_tokens,
    linked_prefix,
    seen_event,
)
from teller.chain.client import ChainClient
from teller.chain.types import Block
from teller.errors import ChainUnavailable, TellerError
from teller.events.schema import EventType
from teller.runtime import ActorRuntimeError, Handle, PassLoopActor
from teller.storage.accounts import chain_account, user_account
from teller.storage.deposits import Checkpoint, Deposits, deposit_key
from teller.storage.store import Row, StaleWrite, StorageError

__all__ = ["ChainWatcher", "WINDOW_BLOCKS", "TIP_MARGIN_BLOCKS", "RANGES_PER_PASS_MAX", "BACKOFF_MAX_S"]

WINDOW_BLOCKS = 256          # recent block hashes kept: the deepest reorg we can walk back
TIP_MARGIN_BLOCKS = 64       # closer to the head than this, logs are asked by block hash
RANGES_PER_PASS_MAX = 20     # catch-up ranges per pass, so the mailbox is served between passes
CREDITS_IN_FLIGHT_MAX = 2_048
BACKOFF_MAX_S = 30.0
WATCHER_MAILBOX_MAX = 16

CrashHook = Callable[[str, str], None]   # (chain, step): tests raise in it to crash the watcher there


class ChainWatcher(PassLoopActor):
    pass_method = "scan_once"
    expected_errors = (TellerError,)
    mailbox_max = WATCHER_MAILBOX_MAX

    def __init__(self, *, chain: Any, store: Any, client: ChainClient, assets: ChainAssets,
                 wallet: Callable[[int], Handle], status: WatcherStatus, start_block: int | None = None,
                 crash_hook: CrashHook | None = None) -> None:
        super().__init__()
        self.chain = chain
        self.name: str = chain.name
        self.repo = Deposits(store)
        self.store = store
        self.client = client
        self.assets = assets
        self.wallet = wallet
        self.status = status
        self.start_block = start_block
        self.crash_hook = crash_hook
        self.addresses: dict[str, int] = {}   # lowercase address -> user id
        self._address_row_id = 0

    # -- the pass loop ---------------------------------------------------------------------------------
    def delay_after(self, caught_up: bool | None, failures: int) -> float:
        if failures:  # the node is down or refusing: back off, with jitter so chains do not retry in step
            delay_s = min(BACKOFF_MAX_S, self.chain.poll_interval_s * 2 ** min(failures, 16))
            return delay_s * (0.5 + random.random() / 2)
        return self.chain.poll_interval_s if caught_up else 0.0  # more to catch up: let the mailbox in, go on

    def _hook(self, step: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(self.name, step)

    # -- one pass ----------------------------------------------------------------------------------------
    async def scan_once(self) -> bool:
        """Scan what is new, then credit what is confirmed; True when caught up with the head."""
        try:
            caught_up = await self._scan()
            await self._credit_confirmed()
        except ChainUnavailable as exc:
            self.status.state, self.status.last_error = "degraded", exc.code
            self.log.warning("deposits.chain_unavailable", chain=self.name, error=str(exc)[:200])
            raise
        except StaleWrite as exc:
            # Another watcher (another process) moved the checkpoint, or a reorg moved a deposit: reread.
            self.log.warning("deposits.stale_checkpoint", chain=self.name)
            raise ChainUnavailable(f"{self.name}: checkpoint moved under us; rereading", chain=self.name) from exc
        self.status.last_error = None
        return caught_up

    async def _scan(self) -> bool:
        head = await self.client.block_number()
        self.status.head = head
        checkpoint = await self._checkpoint(head)
        await self._load_addresses()
        for _ in range(RANGES_PER_PASS_MAX):
            self.status.checkpoint = checkpoint.block_number
            if not await self._still_ours(checkpoint, head):
                checkpoint = await self._rewind(checkpoint, head)
                continue
            if checkpoint.block_number >= head:
                self.status.state = "following"
                return True
            self.status.state = "catching_up" if head - checkpoint.block_number > self.chain.catchup_range_blocks \
                else "following"
            checkpoint = await self._scan_range(checkpoint, head)
        self.status.checkpoint = checkpoint.block_number
        return checkpoint.block_number >= head

    async def _checkpoint(self, head: int) -> Checkpoint:
        checkpoint = await self.repo.checkpoint(self.name)
        if checkpoint is not None:
            return checkpoint
        number = head if self.start_block is None else min(max(self.start_block, 0), head)
        block = await self._block(number, full=False)
        await self.repo.start_at(self.name, Checkpoint(block.number, block.block_hash), parent_hash=block.parent_hash)
        self.log.info("deposits.watch_started", chain=self.name, block_number=block.number)
        stored = await self.repo.checkpoint(self.name)
        assert stored is not None
        return stored

    async def _block(self, number: int, *, full: bool) -> Block:
        block = await self.client.get_block(number, full_transactions=full)
        if block is None:
            raise ChainUnavailable(f"{self.name}: the node has no block {number}", chain=self.name)
        return block

    async def _load_addresses(self) -> None:
        rows = await self.repo.addresses_since(self.name, self._address_row_id)
        for row in rows:
            self.addresses[row["address"].lower()] = int(row["user_id"])
            self._address_row_id = max(self._address_row_id, int(row["id"]))

    async def _still_ours(self, checkpoint: Checkpoint, head: int) -> bool:
        """Is the checkpoint's block still on the node's chain? (Checked against the next block's parent
        when the node has it, else against the node's block at that height.)"""
        if head > checkpoint.block_number:
            return True  # the next range's first block is checked against it in _scan_range
        number = min(head, checkpoint.block_number)
        block = await self._block(number, full=False)
        window = await self.repo.window(self.name) if number != checkpoint.block_number else {}
        ours = checkpoint.block_hash if number == checkpoint.block_number else window.get(number)
        return ours is None or block.block_hash == ours

    async def _scan_range(self, checkpoint: Checkpoint, head: int) -> Checkpoint:
        last = min(head, checkpoint.block_number + self.chain.catchup_range_blocks)
        fetched = await self.client.get_blocks(list(range(checkpoint.block_number + 1, last + 1)))
        if fetched and fetched[0] is not None and fetched[0].parent_hash != checkpoint.block_hash:
            return await self._rewind(checkpoint, head)
        blocks = linked_prefix(checkpoint.block_hash, fetched)
        if not blocks:
            raise ChainUnavailable(f"{self.name}: the node did not answer block {checkpoint.block_number + 1}",
                                   chain=self.name)
        hashes = {b.number: b.block_hash for b in blocks}
        found = find_native(blocks, self.addresses, self.assets)
        found += find_tokens(await self._logs(blocks, head), hashes, self.addresses, self.assets)
        self._hook("scanned")
        statuses = await self.repo.existing(self.name, [(d.tx_hash, d.log_index) for d in found])
        tip = blocks[-1].number
        events = [seen_event(d, self.assets, confirmations=tip - d.block_number + 1) for d in found
                  if statuses.get((d.tx_hash, d.log_index)) in (None, "orphaned")]
        await self.repo.commit_scan(
            self.name, previous=checkpoint, blocks=[(b.number, b.block_hash, b.parent_hash) for b in blocks],
            found=found, statuses=statuses, seen_events=events, window_blocks=WINDOW_BLOCKS)
        if events:
            self.log.info("deposits.seen", chain=self.name, count=len(events), block_number=tip)
        self._hook("committed")
        return Checkpoint(tip, blocks[-1].block_hash)

    async def _logs(self, blocks: list[Block], head: int) -> list[Any]:
        tokens = list(self.assets.tokens)
        if not tokens or not self.addresses:
            return []
        addresses = list(self.addresses)
        deep = [b for b in blocks if b.number <= head - TIP_MARGIN_BLOCKS]
        near = [b for b in blocks if b.number > head - TIP_MARGIN_BLOCKS]
        logs: list[Any] = []
        if deep:
            logs += await self.client.get_transfer_logs(
                tokens=tokens, from_block=deep[0].number, to_block=deep[-1].number, to_addresses=addresses)
        if near:
            by_hash = await self.client.get_transfer_logs_by_block_hashes(
                tokens=tokens, block_hashes=[b.block_hash for b in near], to_addresses=addresses)
            for block in near:
                logs += by_hash[block.block_hash]
        return logs

    async def _rewind(self, checkpoint: Checkpoint, head: int) -> Checkpoint:
        """Walk back to the last block the node and our window agree on; orphan what was above it."""
        window = await self.repo.window(self.name)
        numbers = sorted((n for n in window if n <= min(head, checkpoint.block_number)), reverse=True)
        node_blocks = await self.client.get_blocks(numbers, full_transactions=False)
        ancestor = next((Checkpoint(n, window[n]) for n, b in zip(numbers, node_blocks)
                         if b is not None and b.block_hash == window[n]), None)
        if ancestor is None:
            self.status.state = "reorg_too_deep"
            self.log.error("deposits.reorg_too_deep", chain=self.name, checkpoint=checkpoint.block_number,
                           window_blocks=len(window))
            raise ChainUnavailable(f"{self.name}: reorg deeper than the {WINDOW_BLOCKS}-block window; "
                                   "an operator must look", chain=self.name)
        self._hook("rewinding")
        credited = await self.repo.rewind(self.name, previous=checkpoint, ancestor=ancestor,
                                          orphan_event=self._orphan_event)
        self.log.warning("deposits.reorg", chain=self.name, from_block=checkpoint.block_number,
                         ancestor=ancestor.block_number)
        for row in credited:  # deeper than the confirmations: money already credited; people must look
            self.log.error("deposits.credited_deposit_reorged", chain=self.name, deposit_id=row["id"],
                           tx_hash=row["tx_hash"], block_number=row["block_number"])
        self.status.checkpoint = ancestor.block_number
        return ancestor

    def _orphan_event(self, row: Row) -> Any:
        return deposit_event(EventType.DEPOSIT_ORPHANED, user_id=int(row["user_id"]), chain=self.name,
                             asset=row["asset"], amount_minor=row["amount_minor"],
                             decimals=self.assets.decimals(row["asset"]), tx_hash=row["tx_hash"],
                             log_index=int(row["log_index"]), deposit_id=str(row["id"]))

    # -- crediting -----------------------------------------------------------------------------------------
    async def _credit_confirmed(self) -> None:
        checkpoint = await self.repo.checkpoint(self.name)
        if checkpoint is None:
            return
        rows = await self.repo.confirmed_pending(
            self.name, block_number_max=checkpoint.block_number - self.chain.confirmations + 1)
        if not rows:
            return
        # Defense in depth: a row whose block is in the window must carry that block's hash (a rewind
        # orphans every pending row above the ancestor, so this should never drop one).
        window = await self.repo.window(self.name)
        rows = [r for r in rows if window.get(int(r["block_number"]), r["block_hash"]) == r["block_hash"]]
        self._hook("crediting")
        for start in range(0, len(rows), CREDITS_IN_FLIGHT_MAX):
            chunk = rows[start:start + CREDITS_IN_FLIGHT_MAX]
            outcomes = await asyncio.gather(*(self._credit(row) for row in chunk), return_exceptions=True)
            for row, outcome in zip(chunk, outcomes):
                if isinstance(outcome, StorageError) and not isinstance(outcome, StaleWrite):
                    raise outcome
                if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
                    # A busy wallet or a reorg that moved the row: the next pass tries again.
                    self.log.warning("deposits.credit_deferred", chain=self.name, deposit_id=row["id"],
                                     error=type(outcome).__name__)
        self.log.info("deposits.credited", chain=self.name, count=len(rows), checkpoint=checkpoint.block_number)

    async def _credit(self, row: Row) -> None:
        try:
            await self.wallet(int(row["user_id"])).call("run", self._credit_command(row))
        except ActorRuntimeError:
            raise ChainUnavailable("wallet busy") from None

    def _credit_command(self, row: Row) -> Callable[[Any, int], Any]:
        chain, repo, assets, hook = self.name, self.repo, self.assets, self._hook
        code = f"{chain}:{row['asset']}"
        event = deposit_event(EventType.DEPOSIT_CREDITED, user_id=int(row["user_id"]), chain=chain,
                              asset=row["asset"], amount_minor=row["amount_minor"],
                              decimals=assets.decimals(row["asset"]), tx_hash=row["tx_hash"],
                              log_index=int(row["log_index"]), deposit_id=str(row["id"]))

        async def credit(store: Any, user_id: int) -> None:
            assert user_id == int(row["user_id"])
            transfer = await store.ledger.transfer(
                debit=chain_account(chain, code), credit=user_account(user_id, code), asset=code,
                amount=row["amount_minor"], key=deposit_key(chain, row["tx_hash"], int(row["log_index"])),
                outbox=[event], writes=repo.credit_writes(row))
            if transfer.replayed:
                await repo.mark_credited(row)   # credited before; bring a row that missed it in line
            hook("credit_committed")

        return credit
