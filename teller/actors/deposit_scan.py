"""The ChainWatcher's pure parts: which transfers in fetched blocks and logs are deposits, their events.

Kept apart from the actor so that matching is testable without a node, and the actor reads as a
sequence of I/O steps.

A deposit is named by what the transaction did, never by where it landed: (tx hash, asset, address,
ordinal), the ordinal counting the transaction's transfers of one token contract to one address in
log-index order (a native transfer: 0). A transaction re-mined in another block executes the same
way, so its transfers get the same names there, whatever their new log indexes; the logs of one
transaction all sit in one block, and every block is read whole, so the count is always complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from teller.chain.types import Block, TransferLog
from teller.errors import ChainUnavailable
from teller.events.schema import EventType
from teller.money import format_amount
from teller.storage.deposits import NATIVE_LOG_INDEX, NATIVE_ORDINAL, FoundDeposit
from teller.storage.ledger_types import Event

__all__ = ["ChainAssets", "WatcherStatus", "linked_prefix", "find_native", "find_tokens", "seen_event",
           "deposit_event", "row_event"]


@dataclass(frozen=True, slots=True)
class ChainAssets:
    """What a watcher needs to know about its chain's assets: symbols and decimals by contract."""

    chain: str
    native_symbol: str
    native_decimals: int
    tokens: Mapping[str, tuple[str, int]]   # lowercase contract -> (symbol, decimals)
    confirmations: int

    def decimals(self, symbol: str) -> int:
        if symbol == self.native_symbol:
            return self.native_decimals
        return next(d for s, d in self.tokens.values() if s == symbol)


@dataclass(slots=True)
class WatcherStatus:
    """What /ops/status shows for one chain; written by its watcher only, read by the status route."""

    chain: str
    head: int | None = None
    checkpoint: int | None = None
    state: str = "starting"     # starting | catching_up | following | degraded | reorg_too_deep
    last_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        lag = None if self.head is None or self.checkpoint is None else max(0, self.head - self.checkpoint)
        return {"chain": self.chain, "head": self.head, "checkpoint": self.checkpoint, "lag_blocks": lag,
                "state": self.state, "last_error": self.last_error}


def linked_prefix(parent_hash: str, blocks: Sequence[Block | None]) -> list[Block]:
    """The blocks that continue ``parent_hash`` one after another; stops at a gap (a node that does not
    have the block yet) or a broken link (the node's chain changed between two answers)."""
    linked: list[Block] = []
    expected = parent_hash
    for block in blocks:
        if block is None or block.parent_hash != expected:
            break
        linked.append(block)
        expected = block.block_hash
    return linked


def find_native(blocks: Sequence[Block], addresses: Mapping[str, int], assets: ChainAssets) -> list[FoundDeposit]:
    """Plain value transfers to deposit addresses. A transfer to an address without code cannot revert,
    so inclusion is success. (Value sent by a contract's internal call is not seen here.)"""
    found = []
    for block in blocks:
        for tx in block.transactions:
            user_id = addresses.get(tx.to_address or "")
            if user_id is not None and tx.value_wei > 0:
                found.append(FoundDeposit(
                    user_id=user_id, asset=assets.native_symbol, address=tx.to_address or "", tx_hash=tx.tx_hash,
                    ordinal=NATIVE_ORDINAL, log_index=NATIVE_LOG_INDEX, amount_minor=tx.value_wei,
                    block_number=block.number, block_hash=block.block_hash))
    return found


def find_tokens(logs: Sequence[TransferLog], hashes: Mapping[int, str], addresses: Mapping[str, int],
                assets: ChainAssets) -> list[FoundDeposit]:
    """Transfer logs to deposit addresses, each with its ordinal within its transaction (the k-th
    positive transfer of that token to that address, by log index). ``logs`` must hold every log of
    those blocks to those addresses. Every log must belong to the very blocks we verified: a log from
    another block hash means the node's chain moved between our calls, so the pass is retried."""
    found = []
    seen: set[tuple[str, int]] = set()
    ordinals: dict[tuple[str, str, str], int] = {}
    for log in sorted(logs, key=lambda item: (item.block_number, item.log_index)):
        if log.removed:
            continue
        if hashes.get(log.block_number) != log.block_hash:
            raise ChainUnavailable(f"{assets.chain}: a Transfer log names block {log.block_number} with another "
                                   "hash than the block we read; retrying", chain=assets.chain)
        if (log.block_hash, log.log_index) in seen:
            continue  # a node that answered the same log twice (a range and a hash query overlapping)
        seen.add((log.block_hash, log.log_index))
        user_id = addresses.get(log.to_address)
        token = assets.tokens.get(log.token)
        if user_id is None or token is None or log.amount_minor <= 0:
            continue
        transfer = (log.tx_hash, log.token, log.to_address)
        ordinal = ordinals.get(transfer, 0)
        ordinals[transfer] = ordinal + 1
        found.append(FoundDeposit(
            user_id=user_id, asset=token[0], address=log.to_address, tx_hash=log.tx_hash, ordinal=ordinal,
            log_index=log.log_index, amount_minor=log.amount_minor, block_number=log.block_number,
            block_hash=log.block_hash))
    return found


def deposit_event(event_type: EventType, *, user_id: int, chain: str, asset: str, amount_minor: int,
                  decimals: int, tx_hash: str, log_index: int, ordinal: int, **extra: Any) -> Event:
    return Event(event_type.value, {
        "user_id": str(user_id), "chain": chain, "asset": asset, "amount": format_amount(amount_minor, decimals),
        "tx_hash": tx_hash, "log_index": log_index, "ordinal": ordinal, **extra,
    })


def row_event(event_type: EventType, row: Mapping[str, Any], assets: ChainAssets) -> Event:
    """The event of a recorded deposit (credited, orphaned, reversed)."""
    return deposit_event(event_type, user_id=int(row["user_id"]), chain=assets.chain, asset=row["asset"],
                         amount_minor=row["amount_minor"], decimals=assets.decimals(row["asset"]),
                         tx_hash=row["tx_hash"], log_index=int(row["log_index"]), ordinal=int(row["ordinal"]),
                         deposit_id=str(row["id"]))


def seen_event(dep: FoundDeposit, assets: ChainAssets, *, confirmations: int) -> Event:
    return deposit_event(EventType.DEPOSIT_SEEN, user_id=dep.user_id, chain=assets.chain, asset=dep.asset,
                         amount_minor=dep.amount_minor, decimals=assets.decimals(dep.asset), tx_hash=dep.tx_hash,
                         log_index=dep.log_index, ordinal=dep.ordinal, confirmations=confirmations,
                         required_confirmations=assets.confirmations)
