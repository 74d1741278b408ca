"""ChainWatcher[chain]: follows one EVM chain, records deposits as seen, credits them once confirmed.

One pass (``scan_once``), every ``poll_interval_s`` (a ticker task asks the actor; never more than one
pass queued, never work inside someone else's callback):

1. Read the node's head, then the checkpoint (number + hash) from the database - always from the
   database, so a restarted instance resumes exactly where the last commit left it - then the deposit
   addresses claimed since the last pass, by claim sequence (``seq``: commit order, so none is ever
   skipped). Addresses are read AFTER the head: any block at or below it was mined before this read.
   New addresses are taken in (``chain_checkpoints.address_seq``) in a transaction held to the
   checkpoint; one claimed when the checkpoint was below the current one (``claim_block``) gets the
   range it was not watched in as a backfill, in that same transaction.
2. If the node's block at the checkpoint's height is not ours (same-height reorg) or the next block
   does not link to it (parent-hash mismatch): walk back through the stored window of recent hashes to
   the common ancestor and, in one transaction, orphan the pending deposits above it (one
   ``deposit.orphaned`` event each), mark the credited ones ``out_of_chain`` and rewind the checkpoint;
   then rescan from there.
3. Fetch up to ``catchup_range_blocks`` blocks (full, for native transfers) and keep the prefix that
   links to the checkpoint. Transfer logs: by range (``eth_getLogs`` fromBlock..toBlock) for blocks at
   least ``TIP_MARGIN_BLOCKS`` below the head (every node of a pool has those), by block hash for the
   rest (a node without the block answers "unknown block", never a silent empty list); every log must
   carry the hash of the block we verified, or the pass is retried.
4. One transaction: new deposits ``pending`` + ``deposit.seen`` events, the window, the checkpoint
   (moved only from the value read in step 1: a conditional update).
5. Backfills: for addresses taken in late, their missed range (at most ``BACKFILL_RANGE_BLOCKS`` per
   step, ``BACKFILL_STEPS_MAX`` steps a pass, never above the checkpoint), blocks checked against the
   stored window where they are in it; found deposits are recorded as in 4, with each address's
   progress, the checkpoint unmoved.
   Then the second read: blocks that have just become ``confirmations`` deep are read once more (logs
   and transactions, hash-checked against the window) and any deposit the first read missed is recorded
   the same way. A node whose log index lags its blocks answers an empty ``eth_getLogs`` for a block it
   already serves; believed once, that deposit was lost (the simulator's seed 3). Read again at the
   depth where we credit, a lag is a delay, not a loss. The highest block read twice is kept in memory:
   after a start the whole window is read again (a deposit is unique by its transfer, so nothing doubles).
6. Reversals: an ``out_of_chain`` deposit whose window ended (``reverse_at_block`` reached by the
   checkpoint) becomes ``reversed_after_credit`` with a freeze and a ``deposit.reversed`` event.
7. Credit every pending deposit at least ``confirmations`` deep below the checkpoint, each through its
   user's WalletActor, all submitted at once so the ledger's group commit batches them: ledger transfer
   ``chain:{chain}:{asset}`` -> ``user:{id}:{asset}`` keyed by the row's ``credit_key``, plus the row
   marked credited from that very block, plus ``deposit.credited`` - one transaction.

The reorg window. A credited deposit whose transaction is not on the new chain waits ``confirmations``
blocks past the point where the watcher saw the reorg (the higher of the node's head then and the old
checkpoint). Every block up to that point is scanned before the wait ends, so a transaction re-mined
anywhere before the reorg was noticed is found; after it, the transaction has ``confirmations`` more
blocks - the depth at which we credit - to come back. Not ``WINDOW_BLOCKS``: until the reversal the
credit is still withdrawable (the freeze comes with the reversal), so a longer wait is a longer
exposure. Re-mined later than that, it is a false alarm an operator releases, never a second credit.

If the process dies anywhere, the next instance re-reads the checkpoint: a block range not committed
is scanned again (deposits are unique by their transfer identity), and a credit is keyed, so a replay
is a no-op. RPC failures (``ChainUnavailable``) and lost races (``StaleWrite``) back off and retry
without crashing; anything else crashes the actor and its supervisor restarts it.

Crash hooks (tests raise or SIGKILL in them): ``scanned``, ``committed``, ``rewinding``,
``backfill_scanned``, ``backfill_committed``, ``reversing``, ``reversal_committed``, ``crediting``,
``credit_committed``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from teller.actors.deposit_scan import (
    ChainAssets,
    WatcherStatus,
    find_native,
    find_tokens,
    linked_prefix,
    row_event,
    seen_event,
)
from teller.chain.client import ChainClient
from teller.chain.types import Block
from teller.errors import ChainUnavailable, TellerError
from teller.events.schema import EventType
from teller.money import format_amount
from teller.runtime import ActorRuntimeError, Handle, PassLoopActor
from teller.storage.accounts import chain_account, user_account
from teller.storage.deposits import ADDRESSES_PAGE_MAX, Checkpoint, DepositId, Deposits, FoundDeposit
from teller.storage.store import Row, StaleWrite, StorageError

__all__ = ["ChainWatcher", "WINDOW_BLOCKS", "TIP_MARGIN_BLOCKS", "RANGES_PER_PASS_MAX", "BACKOFF_MAX_S",
           "BACKFILL_RANGE_BLOCKS", "BACKFILL_STEPS_MAX", "CRASH_STEPS"]

WINDOW_BLOCKS = 256          # recent block hashes kept: the deepest reorg we can walk back
TIP_MARGIN_BLOCKS = 64       # closer to the head than this, logs are asked by block hash
RANGES_PER_PASS_MAX = 20     # catch-up ranges per pass, so the mailbox is served between passes
CREDITS_IN_FLIGHT_MAX = 2_048
BACKOFF_MAX_S = 30.0
WATCHER_MAILBOX_MAX = 16
ADDRESS_PAGES_PER_PASS_MAX = 20   # address pages loaded per pass (a restart with more loads over passes)
BACKFILL_RANGE_BLOCKS = 100       # blocks one backfill step reads (full blocks: native transfers)
BACKFILL_STEPS_MAX = 4            # backfill steps per pass
SECOND_READ_BLOCKS_MAX = 100      # blocks one second read covers per pass (after a start, the window's 256)
CRASH_STEPS = ("scanned", "committed", "rewinding", "backfill_scanned", "backfill_committed", "reversing",
               "reversal_committed", "crediting", "credit_committed")

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
        self._address_seq = 0                 # the last claim sequence loaded
        self._not_taken_in: dict[int, tuple[int, int | None]] = {}   # seq -> (address id, claim block)
        self._read_twice: int | None = None   # the highest block read a second time (None: since start, none)

    # -- the pass loop ---------------------------------------------------------------------------------
    def delay_after(self, caught_up: bool | None, failures: int) -> float:
        if failures:  # the node is down or refusing: back off, with jitter so chains do not retry in step
            delay_s = min(BACKOFF_MAX_S, self.chain.poll_interval_s * 2 ** min(failures, 16))
            return delay_s * (0.5 + random.random() / 2)
        return self.chain.poll_interval_s if caught_up else 0.0  # more to catch up: let the mailbox in, go on

    def _hook(self, step: str) -> None:
        assert step in CRASH_STEPS, step
        if self.crash_hook is not None:
            self.crash_hook(self.name, step)

    # -- one pass ----------------------------------------------------------------------------------------
    async def scan_once(self) -> bool:
        """Scan what is new, backfill, reverse what did not come back, credit what is confirmed; True
        when caught up with the head."""
        try:
            caught_up = await self._scan()
            await self._reverse_due()
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
        if not await self._load_addresses(checkpoint):
            return False  # more addresses to load before any block may be scanned: the next pass goes on
        for _ in range(RANGES_PER_PASS_MAX):
            self.status.checkpoint = checkpoint.block_number
            if not await self._still_ours(checkpoint, head):
                checkpoint = await self._rewind(checkpoint, head)
                continue
            if checkpoint.block_number >= head:
                self.status.state = "following"
                break
            self.status.state = "catching_up" if head - checkpoint.block_number > self.chain.catchup_range_blocks \
                else "following"
            checkpoint = await self._scan_range(checkpoint, head)
        self.status.checkpoint = checkpoint.block_number
        for _ in range(BACKFILL_STEPS_MAX):
            if not await self._backfill(checkpoint, head):
                break
        await self._read_again(checkpoint, head)
        return checkpoint.block_number >= head

    async def ensure_checkpoint(self) -> int:
        """The checkpoint, made now from the node's head if the watcher has none yet (asked before a first
        address is claimed: an address claimed with no checkpoint could not be watched from its claim)."""
        checkpoint = await self.repo.checkpoint(self.name)
        if checkpoint is None:
            checkpoint = await self._checkpoint(await self.client.block_number())
        return checkpoint.block_number

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

    # -- deposit addresses ---------------------------------------------------------------------------------
    async def _load_addresses(self, checkpoint: Checkpoint) -> bool:
        """Load the addresses claimed since the last pass (by claim sequence) and take the new ones in;
        False while addresses the database says were taken in are not all loaded yet (a restart with more
        than a pass's pages): no block may be scanned without them."""
        taken_in = await self.repo.address_seq(self.name)
        for _ in range(ADDRESS_PAGES_PER_PASS_MAX):
            rows = await self.repo.addresses_after(self.name, self._address_seq)
            for row in rows:
                seq = int(row["seq"])
                self.addresses[row["address"].lower()] = int(row["user_id"])
                self._address_seq = seq
                if seq > taken_in:
                    claim_block = None if row["claim_block"] is None else int(row["claim_block"])
                    self._not_taken_in[seq] = (int(row["id"]), claim_block)
            if len(rows) < ADDRESSES_PAGE_MAX:
                break
        if self._address_seq < taken_in:
            self.log.info("deposits.loading_addresses", chain=self.name, loaded_seq=self._address_seq,
                          taken_in_seq=taken_in)
            return False
        new = {seq: entry for seq, entry in self._not_taken_in.items() if seq > taken_in}
        if new:
            await self._take_in(checkpoint, taken_in, new)
        self._not_taken_in.clear()
        return True

    async def _take_in(self, checkpoint: Checkpoint, taken_in: int, new: Mapping[int, tuple[int, int | None]]) -> None:
        """From now on every scan has them; one claimed below the checkpoint gets the blocks after its claim
        block up to the checkpoint (scanned without it) as a backfill. NULL claim block: claimed before
        the watcher ever ran, so it was loaded before its first scan."""
        top = checkpoint.block_number
        backfills = [(address_id, claim_block + 1, top) for address_id, claim_block in new.values()
                     if claim_block is not None and claim_block < top]
        await self.repo.take_in_addresses(self.name, checkpoint=checkpoint, previous_seq=taken_in, seq=max(new),
                                          backfills=backfills)
        if backfills:
            self.log.info("deposits.backfill_planned", chain=self.name, addresses=len(backfills),
                          to_block=top, from_block=min(first for _, first, _ in backfills))

    # -- scanning ------------------------------------------------------------------------------------------
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
        found = await self._find(blocks, head, self.addresses)
        self._hook("scanned")
        statuses = await self.repo.existing(self.name, [d.identity for d in found])
        tip = blocks[-1].number
        events = self._seen_events(found, statuses, tip=tip)
        await self.repo.commit_scan(
            self.name, previous=checkpoint, blocks=[(b.number, b.block_hash, b.parent_hash) for b in blocks],
            found=found, statuses=statuses, seen_events=events, window_blocks=WINDOW_BLOCKS)
        self._log_found(found, statuses, events, tip=tip)
        self._hook("committed")
        return Checkpoint(tip, blocks[-1].block_hash)

    async def _find(self, blocks: list[Block], head: int, addresses: Mapping[str, int]) -> list[FoundDeposit]:
        hashes = {b.number: b.block_hash for b in blocks}
        found = find_native(blocks, addresses, self.assets)
        return found + find_tokens(await self._logs(blocks, head, addresses), hashes, addresses, self.assets)

    async def _logs(self, blocks: list[Block], head: int, addresses: Mapping[str, int]) -> list[Any]:
        tokens = list(self.assets.tokens)
        if not tokens or not addresses:
            return []
        to_addresses = list(addresses)
        deep = [b for b in blocks if b.number <= head - TIP_MARGIN_BLOCKS]
        near = [b for b in blocks if b.number > head - TIP_MARGIN_BLOCKS]
        logs: list[Any] = []
        if deep:
            logs += await self.client.get_transfer_logs(
                tokens=tokens, from_block=deep[0].number, to_block=deep[-1].number, to_addresses=to_addresses)
        if near:
            by_hash = await self.client.get_transfer_logs_by_block_hashes(
                tokens=tokens, block_hashes=[b.block_hash for b in near], to_addresses=to_addresses)
            for block in near:
                logs += by_hash[block.block_hash]
        return logs

    def _seen_events(self, found: Sequence[FoundDeposit], statuses: Mapping[DepositId, Row], *, tip: int) -> list[Any]:
        return [seen_event(d, self.assets, confirmations=tip - d.block_number + 1) for d in found
                if d.identity not in statuses or statuses[d.identity]["status"] == "orphaned"]

    def _log_found(self, found: Sequence[FoundDeposit], statuses: Mapping[DepositId, Row], events: Sequence[Any],
                   *, tip: int) -> None:
        if events:
            self.log.info("deposits.seen", chain=self.name, count=len(events), block_number=tip)
        for dep in found:
            row = statuses.get(dep.identity)
            status = None if row is None else row["status"]
            if status == "out_of_chain" and row is not None and row["amount_minor"] == dep.amount_minor:
                self.log.warning("deposits.credited_deposit_back_in_chain", chain=self.name, deposit_id=row["id"],
                                 tx_hash=dep.tx_hash, block_number=dep.block_number)
            elif status == "out_of_chain" and row is not None:
                self.log.error("deposits.credited_deposit_back_with_another_amount", chain=self.name,
                               deposit_id=row["id"], tx_hash=dep.tx_hash, block_number=dep.block_number)
            elif status == "reversed_after_credit" and row is not None:
                self.log.error("deposits.reversed_deposit_reappeared", chain=self.name, deposit_id=row["id"],
                               tx_hash=dep.tx_hash, block_number=dep.block_number,
                               action="left for the operator: no automatic credit")

    # -- backfill: addresses taken in after the checkpoint passed their claim ----------------------------
    async def _backfill(self, checkpoint: Checkpoint, head: int) -> bool:
        """One step: the lowest pending range, for every address it concerns; True if there was one."""
        rows = await self.repo.backfills(self.name)
        if not rows:
            return False
        top = checkpoint.block_number  # never above it: blocks past the checkpoint are the scan's
        ends = {int(r["id"]): min(int(r["backfill_to_block"]), top) for r in rows}
        live = [r for r in rows if int(r["backfill_next_block"]) <= ends[int(r["id"])]]
        found: list[FoundDeposit] = []
        low = high = top
        if live:
            low = min(int(r["backfill_next_block"]) for r in live)
            high = min(low + BACKFILL_RANGE_BLOCKS - 1, max(ends[int(r["id"])] for r in live))
            concerned = [r for r in live if int(r["backfill_next_block"]) <= high]
            blocks = await self._verified_range(low, high)
            addresses = {r["address"].lower(): int(r["user_id"]) for r in concerned}
            bounds = {r["address"].lower(): (int(r["backfill_next_block"]), ends[int(r["id"])]) for r in concerned}
            found = [d for d in await self._find(blocks, head, addresses)
                     if bounds[d.address][0] <= d.block_number <= bounds[d.address][1]]
        progress = []
        for row in rows:
            had, end = int(row["backfill_next_block"]), ends[int(row["id"])]
            if had > end:
                progress.append((int(row["id"]), had, None))   # nothing left below the checkpoint
            elif had <= high and live:
                progress.append((int(row["id"]), had, None if high >= end else high + 1))
        self._hook("backfill_scanned")
        statuses = await self.repo.existing(self.name, [d.identity for d in found])
        events = self._seen_events(found, statuses, tip=top)
        await self.repo.commit_backfill(self.name, checkpoint=checkpoint, found=found, statuses=statuses,
                                        seen_events=events, progress=progress)
        self.log.info("deposits.backfilled", chain=self.name, addresses=len(progress), from_block=low,
                      to_block=high, found=len(events))
        self._log_found(found, statuses, [], tip=top)
        self._hook("backfill_committed")
        return True

    # -- the second read: blocks just ``confirmations`` deep, read once more -----------------------------
    async def _read_again(self, checkpoint: Checkpoint, head: int) -> None:
        top = checkpoint.block_number - self.chain.confirmations + 1
        if not self.addresses or (self._read_twice is not None and top <= self._read_twice):
            return  # nothing new at that depth since the last pass: no query
        window = await self.repo.window(self.name)
        if not self.addresses or not window or top < min(window):
            return
        if self._read_twice is None:
            self._read_twice = min(window) - 1   # after a start: the whole window once more
        low = max(self._read_twice + 1, min(window))
        if low > top:
            return
        high = min(top, low + SECOND_READ_BLOCKS_MAX - 1)
        found = await self._find(await self._verified_range(low, high), head, self.addresses)
        statuses = await self.repo.existing(self.name, [d.identity for d in found])
        missed = [d for d in found if d.identity not in statuses]
        if missed:
            events = self._seen_events(missed, statuses, tip=checkpoint.block_number)
            await self.repo.commit_backfill(self.name, checkpoint=checkpoint, found=missed, statuses=statuses,
                                            seen_events=events, progress=[])
            self.log.warning("deposits.found_on_second_read", chain=self.name, from_block=low, to_block=high,
                             found=len(missed))
        self._read_twice = high

    async def _verified_range(self, low: int, high: int) -> list[Block]:
        """Blocks ``low..high`` (full), linked one to the next, and equal to our window where it has them."""
        fetched = await self.client.get_blocks(list(range(low, high + 1)))
        first = fetched[0] if fetched else None
        blocks = linked_prefix(first.parent_hash, fetched) if first is not None else []
        if len(blocks) != high - low + 1:
            raise ChainUnavailable(f"{self.name}: the node did not answer blocks {low}..{high} as one chain",
                                   chain=self.name)
        window = await self.repo.window(self.name)
        for block in blocks:
            if window.get(block.number, block.block_hash) != block.block_hash:
                raise ChainUnavailable(f"{self.name}: the node's block {block.number} is not ours; retrying",
                                       chain=self.name)
        return blocks

    # -- reorgs ----------------------------------------------------------------------------------------------
    async def _rewind(self, checkpoint: Checkpoint, head: int) -> Checkpoint:
        """Walk back to the last block the node and our window agree on; orphan or mark out of chain what
        was above it."""
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
        reverse_at = max(head, checkpoint.block_number) + self.chain.confirmations  # see "The reorg window"
        self._hook("rewinding")
        left = await self.repo.rewind(self.name, previous=checkpoint, ancestor=ancestor, reverse_at_block=reverse_at,
                                      orphan_event=lambda row: row_event(EventType.DEPOSIT_ORPHANED, row, self.assets))
        self.log.warning("deposits.reorg", chain=self.name, from_block=checkpoint.block_number,
                         ancestor=ancestor.block_number)
        for row in left:  # deeper than the confirmations: money already credited; it has until reverse_at
            self.log.error("deposits.credited_deposit_reorged", chain=self.name, deposit_id=row["id"],
                           tx_hash=row["tx_hash"], block_number=row["block_number"], reverse_at_block=reverse_at)
        self.status.checkpoint = ancestor.block_number
        if self._read_twice is not None:  # the new branch's blocks get their second read too
            self._read_twice = min(self._read_twice, ancestor.block_number)
        return ancestor

    async def _reverse_due(self) -> None:
        """Out-of-chain deposits whose window ended without their transaction: reversed, frozen, announced."""
        checkpoint = await self.repo.checkpoint(self.name)
        if checkpoint is None:
            return
        for row in await self.repo.due_reversals(self.name, block_number=checkpoint.block_number):
            code = f"{self.name}:{row['asset']}"
            self._hook("reversing")
            await self.repo.reverse(
                row, checkpoint=checkpoint, event=row_event(EventType.DEPOSIT_REVERSED, row, self.assets),
                reason=f"credited deposit {row['id']} left the chain and was not back by block "
                       f"{row['reverse_at_block']}")
            self.log.error("deposits.reversed_after_credit", deposit_id=row["id"], user_id=int(row["user_id"]),
                           asset=code, amount=format_amount(row["amount_minor"], self.assets.decimals(row["asset"])))
            self._hook("reversal_committed")

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
        for row in [r for r in rows if not r["credit_key"]]:
            self.log.error("deposits.no_credit_key", chain=self.name, deposit_id=row["id"])
        rows = [r for r in rows if r["credit_key"]]
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
        chain, repo, hook = self.name, self.repo, self._hook
        code = f"{chain}:{row['asset']}"
        event = row_event(EventType.DEPOSIT_CREDITED, row, self.assets)

        async def credit(store: Any, user_id: int) -> None:
            assert user_id == int(row["user_id"])
            transfer = await store.ledger.transfer(
                debit=chain_account(chain, code), credit=user_account(user_id, code), asset=code,
                amount=row["amount_minor"], key=row["credit_key"], outbox=[event], writes=repo.credit_writes(row))
            if transfer.replayed:
                await repo.mark_credited(row)   # credited before; bring a row that missed it in line
            hook("credit_committed")

        return credit
