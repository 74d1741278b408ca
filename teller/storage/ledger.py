"""The double-entry ledger: transfers, two-phase holds, idempotent keys, group commit.

Modelled on TigerBeetle's accounts/transfers. Every movement is a transfer of an ``int`` amount in
the asset's smallest unit from a debit account to a credit account (names in
``teller.storage.accounts``; created on first use). ``user:`` accounts can never go below zero:
``available = posted credits - posted debits - pending debits`` is checked in the same DB
transaction that debits, else ``InsufficientFunds``.

- ``transfer(..., pending=True)`` places a hold; ``post`` settles it (in full or in part, the rest
  returns) and ``void`` releases it, exactly once (``HoldAlreadyResolved`` afterwards; ``NotFound``
  for an unknown hold).
- ``key`` is the client-chosen idempotency key: the same key with the same content returns the
  first result (``Transfer.replayed`` is True), with other content raises ``IdempotencyConflict``.
  The unique constraint on ``transfers.key`` enforces it, across processes too.
- ``outbox=`` events and ``writes=`` statements commit in the same DB transaction as the transfer,
  and only when the transfer is new: a replay runs none of them again. A failing write (or one
  whose ``expect_rows`` does not match: ``StaleWrite``) fails that transfer alone.
- Group commit: concurrent submissions queue up (``QUEUE_MAX``, callers wait when it is full) and
  are written ``BATCH_MAX`` at a time in one DB transaction; each succeeds or fails on its own,
  and a caller hears back only after the commit. A caller cancelled after submitting may still
  see its transfer committed: retry with the same key to learn the outcome. If the database fails
  mid-commit every transfer of that batch raises ``StorageError`` and may or may not be durable —
  again, the same key tells.
- A replay of a transfer this ledger committed lately (``RECENT_KEYS_MAX``) is answered from
  memory, without the database: a committed transfer never changes in anything a replay returns,
  and its key never goes away. Other replays go to the database as before.
- ``amount`` must be an ``int`` (a float or a bool is a ``TypeError``) and positive (``InvalidAmount``).
- ``transfer_many([TransferOrder(...), ...])`` submits several transfers in one call (a watcher
  crediting a block's deposits): one outcome per order, the ``Transfer`` or the exception its own
  ``transfer`` call would have raised. It saves the caller a task per transfer, which on the
  event loop costs about as much as the database work itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from teller.errors import IdempotencyConflict, InvalidAmount, MalformedRequest
from teller.log import get_logger
from teller.storage.accounts import parse_account
from teller.storage.ledger_types import (
    Balance,
    Event,
    HistoryEntry,
    HistoryPage,
    Outcome,
    Transfer,
    TransferRequest,
)
from teller.storage.store import StorageError, Write

if TYPE_CHECKING:
    from teller.storage.store import Store

__all__ = ["Ledger", "TransferOrder", "BATCH_MAX", "QUEUE_MAX", "HISTORY_PAGE_MAX", "TRANSFER_MANY_MAX"]

BATCH_MAX = 256               # transfers per DB transaction
QUEUE_MAX = 8192              # submitted, not yet taken by a writer
TRANSFER_MANY_MAX = 1024      # transfers per transfer_many call
HISTORY_PAGE_MAX = 100
HISTORY_PAGE_DEFAULT = 50
KEY_LEN_MAX = 200
_AMOUNT_LIMIT = 10**78        # a name, not the expression: CPython does not fold a power this large
EVENTS_PER_TRANSFER_MAX = 16
RECENT_KEYS_MAX = 32_768      # committed transfers whose replays are answered from memory (at least half of them)
WRITES_PER_TRANSFER_MAX = 32


@dataclass(slots=True)
class TransferOrder:
    """One transfer of a ``transfer_many`` call: the keyword arguments of ``Ledger.transfer``.

    Not frozen: the ledger reads it once, inside the call, and a frozen dataclass costs a caller
    ~1 us more per transfer to build (1.6 vs 0.6 us measured here).
    """

    debit: str
    credit: str
    asset: str
    amount: int
    key: str
    pending: bool = False
    outbox: Sequence[Event] = ()
    writes: Sequence[Write] = ()


class _Group:
    """The outcomes of one ``transfer_many`` call, filled in as its transfers commit."""

    __slots__ = ("future", "outcomes", "remaining")

    def __init__(self, future: asyncio.Future[list[Outcome]], size: int) -> None:
        self.future = future
        self.outcomes: list[Outcome | None] = [None] * size
        self.remaining = size


# A submitted transfer and where its outcome goes: its caller's future, or a slot of a group.
_Pending = tuple[TransferRequest, "asyncio.Future[Transfer] | _Group", int]


class Ledger:
    def __init__(self, store: Store, *, batch_max: int = BATCH_MAX, queue_max: int = QUEUE_MAX,
                 writers: int = 1) -> None:
        self._store = store
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._writers_count = writers
        # Why a plain list and futures, not an asyncio.Queue: the submit path runs once per
        # transfer on the event loop, which shares the GIL with the database thread; a list
        # append plus (at most) one wake-up per batch is the cheapest hand-off there is.
        self._pending: list[_Pending] = []
        self._idle: list[asyncio.Future[None]] = []       # writers waiting for work
        self._room: list[asyncio.Future[None]] = []       # submitters waiting for queue room
        self._writers: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False
        self._stopped = False   # closed and every writer gone
        # Recently committed transfers by key, with the fingerprint they were asked with; two
        # generations, so forgetting the oldest half is one swap, not an eviction per insert.
        self._recent: dict[str, tuple[str, Transfer]] = {}
        self._recent_old: dict[str, tuple[str, Transfer]] = {}
        self._log = get_logger(component="ledger", backend=store.backend)

    # -- writing -------------------------------------------------------------------------------------
    async def transfer(self, *, debit: str, credit: str, asset: str, amount: int, key: str,
                       pending: bool = False, outbox: Sequence[Event] = (),
                       writes: Sequence[Write] = ()) -> Transfer:
        return await self._submit(_transfer_request(debit, credit, asset, amount, key, pending, outbox, writes))

    async def transfer_many(self, orders: Sequence[TransferOrder]) -> list[Transfer | Exception]:
        """Submit several transfers at once; one outcome per order, in order.

        Each transfer succeeds or fails on its own, exactly as if each had been a ``transfer``
        call (they may commit in one batch or several): an outcome is the ``Transfer`` or the
        exception that call would have raised (``InsufficientFunds``, ``IdempotencyConflict``,
        ``StorageError``...). An order that fails validation (``TypeError``, ``ValueError``,
        ``InvalidAmount``) raises here before any of them is submitted. Returns once every one
        is committed (or failed). At most ``TRANSFER_MANY_MAX`` orders per call.
        """
        if len(orders) > TRANSFER_MANY_MAX:
            raise ValueError(f"at most {TRANSFER_MANY_MAX} transfers per transfer_many call")
        requests = [_transfer_request(o.debit, o.credit, o.asset, o.amount, o.key, o.pending, o.outbox, o.writes)
                    for o in orders]
        if self._closed:
            raise StorageError("the ledger is closed")
        if not requests:
            return []
        if len(self._pending) >= self._queue_max:
            await self._wait_for_room()  # admitted whole: the queue may go over by one call's size
        group = _Group(asyncio.get_running_loop().create_future(), len(requests))
        queued: list[_Pending] = []
        for i, request in enumerate(requests):
            known = self._recent_outcome(request)
            if known is None:
                queued.append((request, group, i))
            else:
                group.outcomes[i] = known
                group.remaining -= 1
        if not queued:
            return group.outcomes  # type: ignore[return-value] - every slot is filled
        self._pending.extend(queued)
        self._kick()
        return await group.future  # type: ignore[return-value] - every slot is filled by then

    async def post(self, *, pending_key: str, key: str, amount: int | None = None,
                   outbox: Sequence[Event] = (), writes: Sequence[Write] = ()) -> Transfer:
        """Settle a hold: ``amount`` (default: all of it) is debited for good, the rest returns."""
        if amount is not None:
            _check_amount(amount)
        return await self._submit(TransferRequest(
            kind="post", key=_check_key(key), pending_key=_check_key(pending_key),
            fingerprint=f"post|{pending_key}|{'full' if amount is None else amount}",
            amount_minor=amount, events=_events(outbox), writes=_writes(writes),
        ))

    async def void(self, *, pending_key: str, key: str, outbox: Sequence[Event] = (),
                   writes: Sequence[Write] = ()) -> Transfer:
        """Release a hold: the whole amount is available again."""
        return await self._submit(TransferRequest(
            kind="void", key=_check_key(key), pending_key=_check_key(pending_key),
            fingerprint=f"void|{pending_key}", events=_events(outbox), writes=_writes(writes),
        ))

    async def _submit(self, request: TransferRequest) -> Transfer:
        if self._closed:
            raise StorageError("the ledger is closed")
        known = self._recent_outcome(request)
        if known is not None:
            if isinstance(known, Exception):
                raise known
            return known
        if len(self._pending) >= self._queue_max:
            await self._wait_for_room()
        future: asyncio.Future[Transfer] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future, 0))
        self._kick()
        return await future

    def _recent_outcome(self, request: TransferRequest) -> Outcome | None:
        """The replay (or the conflict) of a transfer committed lately by this ledger, else None."""
        known = self._recent.get(request.key) or self._recent_old.get(request.key)
        if known is None:
            return None
        fingerprint, t = known
        if fingerprint != request.fingerprint:
            return IdempotencyConflict(key=request.key)
        return Transfer(t.id, t.key, t.kind, t.debit, t.credit, t.asset, t.amount_minor, t.pending_key,
                        t.created_at, True)

    def _kick(self) -> None:
        """Wake an idle writer (one call per batch: later submitters find none idle)."""
        if self._idle:
            waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(None)
        elif not self._started:
            self._start()

    async def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._pending) >= self._queue_max:
            waiter: asyncio.Future[None] = loop.create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)
            if self._stopped:
                raise StorageError("the ledger is closed")

    def _start(self) -> None:
        self._started = True
        self._writers = [asyncio.create_task(self._write_loop(), name=f"ledger-writer-{i}")
                         for i in range(self._writers_count)]

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                if self._closed and not self._room:
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._idle:
                        self._idle.remove(waiter)
                continue
            batch = pending[:self._batch_max]
            del pending[:self._batch_max]
            while self._room and len(pending) < self._queue_max:
                room = self._room.pop(0)
                if not room.done():
                    room.set_result(None)
            await self._commit(batch)

    async def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        self._deliver(batch, [exc] * len(batch))

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            outcomes: list[Outcome] = await self._store.apply_transfers([p[0] for p in batch])
        except Exception as exc:  # noqa: BLE001 - every caller of the batch hears of it
            self._log.error("ledger batch failed", size=len(batch), error=repr(exc))
            outcomes = [exc] * len(batch)
        self._deliver(batch, outcomes)

    def _deliver(self, batch: list[_Pending], outcomes: list[Outcome]) -> None:
        recent = self._recent
        for (request, sink, slot), outcome in zip(batch, outcomes, strict=True):
            if type(outcome) is Transfer:
                recent[request.key] = (request.fingerprint, outcome)
                if len(recent) >= RECENT_KEYS_MAX // 2:
                    self._recent_old, self._recent = recent, {}
                    recent = self._recent
            if type(sink) is _Group:
                sink.outcomes[slot] = outcome
                sink.remaining -= 1
                if sink.remaining == 0 and not sink.future.done():
                    sink.future.set_result(sink.outcomes)
            elif sink.done():
                continue  # the caller gave up; the outcome stands in the DB all the same
            elif isinstance(outcome, Exception):
                sink.set_exception(outcome)
            else:
                sink.set_result(outcome)

    async def close(self) -> None:
        """Finish every submitted transfer, then stop the writers."""
        self._closed = True
        if not self._started:
            return
        for waiter in self._idle:
            if not waiter.done():
                waiter.set_result(None)
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []
        self._stopped = True
        if self._pending:  # submitted by a caller woken from a full queue after the writers left
            stragglers, self._pending[:] = list(self._pending), []
            await self._fail(stragglers, StorageError("the ledger is closed"))
        for waiter in self._room:
            if not waiter.done():
                waiter.set_result(None)  # they see _stopped and raise

    # -- reading -------------------------------------------------------------------------------------
    async def balances(self, user_id: int) -> list[Balance]:
        """Available and held per asset for every asset the user has an account in."""
        rows = await self._store.fetch_small("SELECT * FROM accounts WHERE user_id = ? ORDER BY asset", user_id)
        return [Balance(
            asset=r["asset"],
            available_minor=r["posted_credits_minor"] - r["posted_debits_minor"] - r["pending_debits_minor"],
            held_minor=r["pending_debits_minor"],
        ) for r in rows]

    async def account(self, name: str) -> dict[str, int]:
        """The four running sums of one account (zeros if it was never used)."""
        row = await self._store.fetch_one("SELECT * FROM accounts WHERE name = ?", name)
        fields = ("posted_debits_minor", "posted_credits_minor", "pending_debits_minor", "pending_credits_minor")
        return {f: (row[f] if row else 0) for f in fields}

    async def get(self, key: str) -> Transfer | None:
        row = await self._store.fetch_one("SELECT * FROM transfers WHERE key = ?", key)
        return None if row is None else Transfer(
            id=row["id"], key=row["key"], kind=row["kind"], debit=row["debit"], credit=row["credit"],
            asset=row["asset"], amount_minor=row["amount_minor"], pending_key=row["pending_key"],
            created_at=row["created_at"], replayed=True)

    async def history(self, user_id: int, *, limit: int = HISTORY_PAGE_DEFAULT,
                      cursor: str | None = None) -> HistoryPage:
        """The user's transfers, newest first. Pass ``next_cursor`` back for the next page.

        A hold shows as kind ``pending`` (its status tells how it ended); its settlement as ``post``
        or ``void``. ``limit`` is clamped to 1..HISTORY_PAGE_MAX; a malformed cursor is
        ``MalformedRequest``.
        """
        if type(limit) is not int:  # noqa: E721
            raise MalformedRequest("limit must be an integer")
        limit = max(1, min(limit, HISTORY_PAGE_MAX))
        before_id = 2**62
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
                raise MalformedRequest("bad cursor")
            before_id = int(cursor)
        rows = await self._store.fetch_all(
            "SELECT * FROM transfers WHERE (debit_user_id = ? OR credit_user_id = ?) AND id < ?"
            " ORDER BY id DESC LIMIT ?", user_id, user_id, before_id, limit + 1)
        entries = tuple(_entry(r, user_id) for r in rows[:limit])
        return HistoryPage(entries, str(entries[-1].id) if len(rows) > limit else None)

    async def check_invariants(self) -> list[str]:
        """Every violation found, as text; an empty list means the ledger is sound. Never raises
        for a violation (tests ``assert not await ledger.check_invariants()``)."""
        from teller.storage.invariants import check_invariants

        return await check_invariants(self._store)


def _entry(row: dict, user_id: int) -> HistoryEntry:
    out = row["debit_user_id"] == user_id
    return HistoryEntry(
        id=row["id"], key=row["key"], kind=row["kind"], asset=row["asset"], amount_minor=row["amount_minor"],
        direction="out" if out else "in", counterparty=row["credit"] if out else row["debit"],
        status=row["status"], created_at=row["created_at"],
    )


def _transfer_request(debit: str, credit: str, asset: str, amount: int, key: str, pending: bool,
                      outbox: Sequence[Event], writes: Sequence[Write]) -> TransferRequest:
    _check_amount(amount)
    if not isinstance(asset, str) or not asset:
        raise ValueError("asset must be a non-empty string")
    d, c = parse_account(debit), parse_account(credit)
    if (d.asset is not None and d.asset != asset) or (c.asset is not None and c.asset != asset):
        name = d.name if d.asset is not None and d.asset != asset else c.name
        raise ValueError(f"account {name} is not an account of {asset}")
    if debit == credit:
        raise ValueError("debit and credit must differ")
    kind = "pending" if pending else "single"
    # positional, in field order: once per transfer on the event loop, keywords cost ~0.3 us more
    return TransferRequest(kind, _check_key(key), f"{kind}|{debit}|{credit}|{asset}|{amount}", debit, credit, asset,
                           amount, None, d.user_id, c.user_id, _events(outbox) if outbox else (),
                           _writes(writes) if writes else ())


def _check_amount(amount: object) -> None:
    if type(amount) is not int:  # noqa: E721 - bool and float are both bugs here
        raise TypeError(f"amount must be an int in the smallest unit, got {type(amount).__name__}")
    if amount <= 0:
        raise InvalidAmount("amount must be greater than zero")
    if amount >= _AMOUNT_LIMIT:
        raise InvalidAmount("amount is too large")


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > KEY_LEN_MAX:
        raise ValueError(f"a ledger key is a non-empty string of at most {KEY_LEN_MAX} characters")
    return key


def _events(events: Sequence[Event]) -> list[tuple[str, str]]:
    if len(events) > EVENTS_PER_TRANSFER_MAX:
        raise ValueError(f"at most {EVENTS_PER_TRANSFER_MAX} events per transfer")
    return [(e.type, e.payload_json()) for e in events]


def _writes(writes: Sequence[Write]) -> tuple[Write, ...]:
    if len(writes) > WRITES_PER_TRANSFER_MAX:
        raise ValueError(f"at most {WRITES_PER_TRANSFER_MAX} writes per transfer")
    return tuple(writes)
