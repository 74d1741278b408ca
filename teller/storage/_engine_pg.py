"""The ledger engine on PostgreSQL: binds a batch as arrays for ``teller_apply_transfers``.

A batch without ``writes=`` is one function call, one round trip. A transfer that carries writes
runs alone inside a savepoint (function call, then its writes), so a failing write undoes just it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from teller.errors import (
    HoldAlreadyResolved,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidAmount,
    NotFound,
    TellerError,
)
from teller.storage.ledger_types import Outcome, Transfer, TransferRequest
from teller.storage.store import StaleWrite, Write, normalize_row

__all__ = ["apply_batch", "run_writes"]

_CALL = "SELECT * FROM teller_apply_transfers_v2($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
# A batch of new money moves only (no post/void) takes the set-based function.
_CALL_MOVES = "SELECT * FROM teller_apply_moves($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
_MOVES = frozenset(("single", "pending"))


async def apply_batch(conn: asyncpg.Connection, batch: Sequence[TransferRequest],
                      translate: Any) -> list[Outcome]:
    """Run the batch in one transaction on ``conn``; ``translate(sql)`` rewrites ``?`` placeholders."""
    if not any(r.writes for r in batch):
        return await _call(conn, batch)  # one statement: its own transaction, one round trip
    outcomes: list[Outcome] = []
    async with conn.transaction():
        plain: list[TransferRequest] = []
        for req in batch:
            if not req.writes:
                plain.append(req)
                continue
            if plain:
                outcomes.extend(await _call(conn, plain))
                plain = []
            outcomes.append(await _with_writes(conn, req, translate))
        if plain:
            outcomes.extend(await _call(conn, plain))
    return outcomes


async def _with_writes(conn: asyncpg.Connection, req: TransferRequest, translate: Any) -> Outcome:
    from teller.storage.postgres import translate_error  # the one adapter of asyncpg's errors

    try:
        async with conn.transaction():  # a savepoint inside the batch's transaction
            (outcome,) = await _call(conn, [req])
            if isinstance(outcome, Transfer) and not outcome.replayed:
                await run_writes(conn, req.writes, translate)
            return outcome
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
        raise  # the whole batch retries
    except asyncpg.PostgresError as exc:
        return translate_error(exc)
    except (StaleWrite, TellerError) as exc:  # a stale write, or a write's check refused: this transfer alone
        return exc


async def run_writes(conn: asyncpg.Connection, writes: Sequence[Write], translate: Any) -> list[int]:
    """Run ``writes`` in order on ``conn`` (inside the caller's transaction); the rows each touched."""
    counts = []
    for write in writes:
        if write.check is not None:
            rows = [normalize_row(r) for r in await conn.fetch(translate(write.sql), *write.params)]
            write.check(rows)
            counts.append(len(rows))
            continue
        count = _rowcount(await conn.execute(translate(write.sql), *write.params))
        if write.expect_rows is not None and count != write.expect_rows:
            raise StaleWrite(f"write touched {count} rows, expected {write.expect_rows}")
        counts.append(count)
    return counts


def _rowcount(status: str) -> int:
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _call(conn: asyncpg.Connection, batch: Sequence[TransferRequest]) -> list[Outcome]:
    event_idx: list[int] = []
    event_types: list[str] = []
    event_payloads: list[str] = []
    for i, req in enumerate(batch, start=1):
        for event_type, payload in req.events:
            event_idx.append(i)
            event_types.append(event_type)
            event_payloads.append(payload)
    rows = await conn.fetch(
        _CALL_MOVES if all(r.kind in _MOVES for r in batch) else _CALL,
        [r.kind for r in batch], [r.key for r in batch], [r.debit for r in batch], [r.credit for r in batch],
        [r.asset for r in batch], [r.amount_minor for r in batch], [r.pending_key for r in batch],
        [r.fingerprint for r in batch], [r.debit_user_id for r in batch], [r.credit_user_id for r in batch],
        event_idx, event_types, event_payloads,
    )
    by_idx = {row["r_idx"]: row for row in rows}
    return [_outcome(req, by_idx[i]) for i, req in enumerate(batch, start=1)]


def _outcome(req: TransferRequest, row: Any) -> Outcome:
    status = row["r_status"]
    if status in ("ok", "replay"):
        return Transfer(
            id=row["r_id"], key=req.key, kind=row["r_kind"], debit=row["r_debit"], credit=row["r_credit"],
            asset=row["r_asset"], amount_minor=int(row["r_amount"]), pending_key=row["r_pending_key"],
            created_at=row["r_created_at"], replayed=status == "replay",
        )
    if status == "conflict":
        return IdempotencyConflict(key=req.key)
    if status == "insufficient":
        return InsufficientFunds(account=req.debit)
    if status == "not_found":
        return NotFound("no such hold", pending_key=req.pending_key)
    if status == "resolved":
        return HoldAlreadyResolved(pending_key=req.pending_key)
    if status == "too_much":
        return InvalidAmount("cannot post more than the hold")
    if status == "asset_mismatch":
        return ValueError(f"an account of {req.key!r} holds another asset than {req.asset}")
    raise AssertionError(f"unknown ledger status {status!r}")
