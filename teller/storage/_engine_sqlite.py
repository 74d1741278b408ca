"""The ledger engine on SQLite: a whole batch in one transaction, run inside the store's thread.

Why this shape: SQLite has one writer, so ``BEGIN IMMEDIATE`` serializes us against every other
process; inside it the batch's keys and the accounts the last batch did not leave behind
(``AccountCache``) are read once, every transfer is decided in Python against in-batch balances
(each succeeds or fails on its own, no savepoint needed), and the results are written with a few
many-row statements. Only a transfer that carries ``writes=`` gets a savepoint, so that a failing
write undoes just that transfer.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import chain
from datetime import datetime
from typing import Any

from teller.errors import HoldAlreadyResolved, IdempotencyConflict, InsufficientFunds, InvalidAmount, NotFound
from teller.storage.ledger_types import Outcome, Transfer, TransferRequest
from teller.storage.store import StaleWrite, Write, format_ts, normalize_row, parse_ts

__all__ = ["apply_batch", "adapt_params", "run_writes"]

SQL_VARS_MAX = 500  # bound parameters per statement: far under SQLITE_MAX_VARIABLE_NUMBER on any build
_INT64_MAX = 2**63 - 1
_STATUS_OF = {"single": "posted", "pending": "pending", "post": "posted", "void": "voided"}
# account state: [asset, user_id, posted_debits, posted_credits, pending_debits, pending_credits, state]
_A_ASSET, _A_USER, _PD, _PC, _PEND_D, _PEND_C, _STATE = range(7)
_NEW, _CLEAN, _DIRTY = "new", "clean", "dirty"
_COLUMNS = ("id", "key", "kind", "debit", "credit", "asset", "amount_minor", "pending_key", "status", "fingerprint",
            "debit_user_id", "credit_user_id", "created_at")   # of transfers, as the engine reads them
_COLUMNS_SQL = ", ".join(_COLUMNS)
# A transfer row is a list in _COLUMNS order (the amount as the text SQLite stores): new rows go
# to the INSERT as they are, and only a hold's status ever changes in place.
(_ID, _KEY, _KIND, _DEBIT, _CREDIT, _ASSET, _AMOUNT, _PENDING_KEY, _STATUS, _FINGERPRINT, _DEBIT_USER, _CREDIT_USER,
 _CREATED) = range(len(_COLUMNS))


def adapt_params(params: Iterable[Any]) -> tuple[Any, ...]:
    """Python values -> what sqlite3 can bind: big ints as decimal text, datetimes as our text form."""
    out = []
    for value in params:
        if isinstance(value, bool):
            out.append(int(value))
        elif isinstance(value, int) and not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            out.append(str(value))
        elif isinstance(value, datetime):
            out.append(format_ts(value))
        else:
            out.append(value)
    return tuple(out)


def run_writes(conn: sqlite3.Connection, writes: Sequence[Write]) -> list[int]:
    counts = []
    for write in writes:
        cur = conn.execute(write.sql, adapt_params(write.params))
        if write.check is not None:
            names = [d[0] for d in cur.description or ()]
            rows = [normalize_row(dict(zip(names, r))) for r in cur.fetchall()]
            write.check(rows)
            counts.append(len(rows))
            continue
        count = cur.rowcount
        if write.expect_rows is not None and count != write.expect_rows:
            raise StaleWrite(f"write touched {count} rows, expected {write.expect_rows}: {write.sql[:80]}")
        counts.append(count)
    return counts


class AccountCache:
    """The accounts as this connection's last ledger commit left them, for the next batch.

    Why: reading a batch's ~200 accounts back cost ~2 us a transfer, and the writer connection
    wrote them itself. Valid only while nothing else wrote: the engine checks ``PRAGMA
    data_version`` under the write lock (it moves when another connection commits), and the store
    calls ``clear()`` after any other write on this connection. A batch that fails, or carries
    ``writes=`` (any SQL), clears it too.
    """

    __slots__ = ("rows", "version")

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}   # name -> account state, as _Batch.accounts holds it
        self.version: int | None = None        # data_version right after the commit that left them

    def clear(self) -> None:
        self.rows = {}
        self.version = None


ACCOUNTS_CACHED_MAX = 100_000


def apply_batch(conn: sqlite3.Connection, batch: Sequence[TransferRequest], now: datetime,
                cache: AccountCache | None = None) -> list[Outcome]:
    cache = cache if cache is not None else AccountCache()
    work = _Batch(conn, batch, now)
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    rows = work._load_keys()
    if all(r.key in rows for r in batch):
        # Every key exists: all replays (or conflicts), answered from the rows without taking
        # the write lock. Safe: a committed transfer row never changes in anything a replay
        # returns (only a hold's status moves, and a replay does not report it).
        return [work._replay(req, rows[req.key]) for req in batch]
    conn.execute("BEGIN IMMEDIATE")
    try:
        locked_version = conn.execute("PRAGMA data_version").fetchone()[0]
        if locked_version != version:
            rows = work._load_keys()  # another connection committed since that read: read again
        if locked_version != cache.version:
            cache.clear()
        outcomes = work.run(rows, cache.rows)
        conn.execute("COMMIT")
    except BaseException:
        cache.clear()  # its account lists may hold this batch's undone moves
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if any(r.writes for r in batch) or len(cache.rows) + len(work.accounts) > ACCOUNTS_CACHED_MAX:
        cache.clear()
    else:
        for account in work.accounts.values():
            account[_STATE] = _CLEAN
        cache.rows.update(work.accounts)
        # The version read under the lock, not one read now: a commit by another connection
        # right after ours must still move it (our own commit never does).
        cache.version = locked_version
    return outcomes


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), SQL_VARS_MAX):
        yield items[i:i + SQL_VARS_MAX]


class _Batch:
    def __init__(self, conn: sqlite3.Connection, batch: Sequence[TransferRequest], now: datetime) -> None:
        self.conn = conn
        self.batch = batch
        self.now = now
        self.now_text = format_ts(now)
        self.now_stored = parse_ts(self.now_text)  # what a reader of the row gets back (ms precision)
        self.known: dict[str, list[Any]] = {}
        self.hold_status_db: dict[str, str] = {}   # holds read from the DB: their status before us
        self.accounts: dict[str, list[Any]] = {}
        self.new_rows: list[list[Any]] = []
        self.events: list[tuple[str, str, str]] = []
        self.next_id = 0

    def run(self, rows: dict[str, tuple[Any, ...]], cached: dict[str, list[Any]]) -> list[Outcome]:
        """Decide and write the batch; ``rows``: its existing keys, read inside this transaction
        (or before it, with no commit by another connection since); ``cached``: accounts known
        to be as the database has them now."""
        self._load(rows, cached)
        guarded, plain = self._decide_guarded, self._decide_plain
        outcomes: list[Outcome] = [guarded(req) if req.writes else plain(req) for req in self.batch]
        self._flush()
        return outcomes

    # -- loading -------------------------------------------------------------------------------
    def _load_keys(self) -> dict[str, tuple[Any, ...]]:
        """The batch's keys and hold keys that exist, as plain tuples (``_COLUMNS`` order)."""
        keys = sorted({r.key for r in self.batch} | {r.pending_key for r in self.batch if r.pending_key})
        cur = self.conn.cursor()
        cur.row_factory = None  # tuples: a replay-only batch never needs more
        found: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(keys):
            marks = ",".join("?" * len(chunk))
            for row in cur.execute(f"SELECT {_COLUMNS_SQL} FROM transfers WHERE key IN ({marks})", tuple(chunk)):
                found[row[1]] = row
        cur.close()
        return found

    def _replay(self, req: TransferRequest, row: tuple[Any, ...]) -> Outcome:
        if row[_FINGERPRINT] != req.fingerprint:
            return IdempotencyConflict(key=req.key)
        # positional: a frozen dataclass takes keywords ~0.4 us slower, once per transfer
        return Transfer(row[0], row[1], row[2], row[3], row[4], row[5], int(row[6]), row[7], _created(row[12]), True)

    def _load(self, rows: dict[str, tuple[Any, ...]], cached: dict[str, list[Any]]) -> None:
        for key, row in rows.items():
            known = self.known[key] = list(row)
            if known[_KIND] == "pending":
                self.hold_status_db[key] = known[_STATUS]
        names = {n for r in self.batch for n in (r.debit, r.credit) if n}
        names |= {n for r in self.known.values() for n in (r[_DEBIT], r[_CREDIT])}
        for name in names:
            account = cached.get(name)
            if account is not None:
                self.accounts[name] = account
        names.difference_update(self.accounts)
        cur = self.conn.cursor()
        cur.row_factory = None
        for chunk in _chunks(sorted(names)):
            marks = ",".join("?" * len(chunk))
            for name, asset, user_id, pd, pc, ped, pec in cur.execute(
                    "SELECT name, asset, user_id, posted_debits_minor, posted_credits_minor, pending_debits_minor,"
                    f" pending_credits_minor FROM accounts WHERE name IN ({marks})", tuple(chunk)):
                self.accounts[name] = [asset, user_id, int(pd), int(pc), int(ped), int(pec), _CLEAN]
        self.next_id = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM transfers").fetchone()[0]
        cur.close()

    # -- deciding ------------------------------------------------------------------------------
    def _decide_plain(self, req: TransferRequest) -> Outcome:
        try:
            return self._decide(req)
        except (HoldAlreadyResolved, IdempotencyConflict, InsufficientFunds, InvalidAmount, NotFound, ValueError) as exc:
            return exc

    def _decide_guarded(self, req: TransferRequest) -> Outcome:
        """A transfer with writes: a savepoint, and an in-memory snapshot to undo on failure."""
        saved_accounts = {n: list(a) for n, a in self.accounts.items()}
        saved_status = {k: r[_STATUS] for k, r in self.known.items() if r[_KIND] == "pending"}
        rows_len, events_len, next_id = len(self.new_rows), len(self.events), self.next_id
        had_key = req.key in self.known
        self.conn.execute("SAVEPOINT transfer_writes")
        try:
            outcome = self._decide(req)
            if not outcome.replayed:
                run_writes(self.conn, req.writes)
            self.conn.execute("RELEASE transfer_writes")
            return outcome
        except Exception as exc:  # noqa: BLE001 - the failure belongs to this transfer alone
            self.conn.execute("ROLLBACK TO transfer_writes")
            self.conn.execute("RELEASE transfer_writes")
            self.accounts = saved_accounts
            for key, status in saved_status.items():
                self.known[key][_STATUS] = status
            del self.new_rows[rows_len:], self.events[events_len:]
            self.next_id = next_id
            if not had_key:
                self.known.pop(req.key, None)
            return _translate(exc)

    def _decide(self, req: TransferRequest) -> Transfer:
        existing = self.known.get(req.key)
        if existing is not None:
            if existing[_FINGERPRINT] != req.fingerprint:
                raise IdempotencyConflict(key=req.key)
            return _transfer(existing, self.now, replayed=True)
        if req.kind in ("single", "pending"):
            row, amount = self._move(req)
        else:
            row, amount = self._resolve(req)
        self.known[req.key] = row
        self.new_rows.append(row)
        if req.events:
            self.events.extend([(t, p, self.now_text) for t, p in req.events])
        # built from what we hold (no parsing of what we are about to write), positional as in _replay
        return Transfer(row[_ID], req.key, req.kind, row[_DEBIT], row[_CREDIT], row[_ASSET], amount,
                        req.pending_key, self.now_stored, False)

    def _move(self, req: TransferRequest) -> tuple[list[Any], int]:
        # The hot path of every batch, so written out flat (it was 4-5 us a transfer in calls).
        asset, amount = req.asset, req.amount_minor
        debit = self.accounts.get(req.debit)  # type: ignore[arg-type]
        if debit is None or debit[_A_ASSET] != asset:
            debit = self._account(req.debit, asset, req.debit_user_id)  # type: ignore[arg-type]
        credit = self.accounts.get(req.credit)  # type: ignore[arg-type]
        if credit is None or credit[_A_ASSET] != asset:
            credit = self._account(req.credit, asset, req.credit_user_id)  # type: ignore[arg-type]
        if debit[_A_USER] is not None and debit[_PC] - debit[_PD] - debit[_PEND_D] < amount:
            raise InsufficientFunds(account=req.debit)
        if req.kind == "single":
            debit[_PD] += amount
            credit[_PC] += amount
            status = "posted"
        else:
            debit[_PEND_D] += amount
            credit[_PEND_C] += amount
            status = "pending"
        if debit[_STATE] == _CLEAN:
            debit[_STATE] = _DIRTY
        if credit[_STATE] == _CLEAN:
            credit[_STATE] = _DIRTY
        row = [self.next_id, req.key, req.kind, req.debit, req.credit, asset, str(amount), None, status,
               req.fingerprint, req.debit_user_id, req.credit_user_id, self.now_text]
        self.next_id += 1
        return row, amount

    def _resolve(self, req: TransferRequest) -> tuple[list[Any], int]:
        assert req.pending_key
        hold = self.known.get(req.pending_key)
        if hold is None or hold[_KIND] != "pending":
            raise NotFound("no such hold", pending_key=req.pending_key)
        if hold[_STATUS] != "pending":
            raise HoldAlreadyResolved(pending_key=req.pending_key)
        held = int(hold[_AMOUNT])
        amount = held if req.amount_minor is None or req.kind == "void" else req.amount_minor
        if amount > held:
            raise InvalidAmount("cannot post more than the hold", held_minor=held)
        debit, credit = self.accounts[hold[_DEBIT]], self.accounts[hold[_CREDIT]]
        debit[_PEND_D] -= held
        credit[_PEND_C] -= held
        if req.kind == "post":
            debit[_PD] += amount
            credit[_PC] += amount
        _touch(debit)
        _touch(credit)
        hold[_STATUS] = "posted" if req.kind == "post" else "voided"
        return self._row(req, hold[_DEBIT], hold[_CREDIT], hold[_ASSET], amount, hold[_DEBIT_USER],
                         hold[_CREDIT_USER]), amount

    def _account(self, name: str, asset: str, user_id: int | None) -> list[Any]:
        account = self.accounts.get(name)
        if account is None:
            account = self.accounts[name] = [asset, user_id, 0, 0, 0, 0, _NEW]
        elif account[_A_ASSET] != asset:
            raise ValueError(f"account {name} holds {account[_A_ASSET]}, not {asset}")
        return account

    def _row(self, req: TransferRequest, debit: str, credit: str, asset: str, amount: int,
             debit_user_id: int | None, credit_user_id: int | None) -> list[Any]:
        row = [self.next_id, req.key, req.kind, debit, credit, asset, str(amount), req.pending_key,
               _STATUS_OF[req.kind], req.fingerprint, debit_user_id, credit_user_id, self.now_text]
        self.next_id += 1
        return row

    # -- flushing ------------------------------------------------------------------------------
    def _flush(self) -> None:
        new = [(n, a[_A_ASSET], a[_A_USER], str(a[_PD]), str(a[_PC]), str(a[_PEND_D]), str(a[_PEND_C]), self.now_text)
               for n, a in self.accounts.items() if a[_STATE] == _NEW]
        dirty = [(n, str(a[_PD]), str(a[_PC]), str(a[_PEND_D]), str(a[_PEND_C]))
                 for n, a in self.accounts.items() if a[_STATE] == _DIRTY]
        _insert_rows(self.conn, _INSERT_ACCOUNTS, new)
        _insert_rows(self.conn, _UPDATE_ACCOUNTS, dirty)
        _insert_rows(self.conn, _INSERT_TRANSFERS, self.new_rows)
        resolved = [(self.known[k][_STATUS], k) for k, before in self.hold_status_db.items()
                    if self.known[k][_STATUS] != before]
        self.conn.executemany("UPDATE transfers SET status = ? WHERE key = ?", resolved)
        _insert_rows(self.conn, _INSERT_OUTBOX, self.events)


_COLUMNS_PER_ROW_MAX = 16


class _RowsStatement:
    """A statement that takes many rows in one VALUES list, its text cached per row count.

    Why: ``executemany`` runs the statement once per row, and each run of an INSERT into
    ``transfers`` rebuilds the lookup tables of its ``CHECK (… IN (…))`` constraints; one
    statement with 32 rows pays that once (4.5 vs 7.9 us a row measured here) and releases the
    GIL for the whole statement, not once per row.
    """

    def __init__(self, head: str, tail: str, columns: int) -> None:
        if columns > _COLUMNS_PER_ROW_MAX:
            raise ValueError(f"at most {_COLUMNS_PER_ROW_MAX} columns a row")
        self._row = "(" + ",".join("?" * columns) + ")"
        self._head, self._tail = head, tail
        self._texts: dict[int, str] = {}

    def text(self, rows: int) -> str:
        text = self._texts.get(rows)
        if text is None:
            text = self._texts[rows] = f"{self._head} VALUES {','.join([self._row] * rows)}{self._tail}"
        return text


ROWS_PER_STATEMENT = SQL_VARS_MAX // _COLUMNS_PER_ROW_MAX   # 31 rows stay under SQL_VARS_MAX
_INSERT_ACCOUNTS = _RowsStatement(
    "INSERT INTO accounts (name, asset, user_id, posted_debits_minor, posted_credits_minor, pending_debits_minor,"
    " pending_credits_minor, created_at)", "", 8)
_UPDATE_ACCOUNTS = _RowsStatement(   # UPDATE … FROM: SQLite 3.33+ (the store checks at open)
    "UPDATE accounts SET posted_debits_minor = u.column2, posted_credits_minor = u.column3,"
    " pending_debits_minor = u.column4, pending_credits_minor = u.column5 FROM (",
    ") AS u WHERE accounts.name = u.column1", 5)
_INSERT_TRANSFERS = _RowsStatement(
    "INSERT INTO transfers (id, key, kind, debit, credit, asset, amount_minor, pending_key, status, fingerprint,"
    " debit_user_id, credit_user_id, created_at)", "", 13)
_INSERT_OUTBOX = _RowsStatement("INSERT INTO outbox (type, payload, created_at)", "", 3)


def _insert_rows(conn: sqlite3.Connection, statement: _RowsStatement, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``statement`` over ``rows``, ROWS_PER_STATEMENT rows at a time, in the given order."""
    for i in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[i:i + ROWS_PER_STATEMENT]
        conn.execute(statement.text(len(chunk)), list(chain.from_iterable(chunk)))


# A batch's transfers share one timestamp, so a replayed batch parses a handful of distinct texts.
_created = functools.lru_cache(maxsize=1024)(parse_ts)


def _touch(account: list[Any]) -> None:
    if account[_STATE] == _CLEAN:
        account[_STATE] = _DIRTY


def _transfer(row: list[Any], now: datetime, *, replayed: bool) -> Transfer:
    created = row[_CREATED]
    return Transfer(int(row[_ID]), row[_KEY], row[_KIND], row[_DEBIT], row[_CREDIT], row[_ASSET], int(row[_AMOUNT]),
                    row[_PENDING_KEY], _created(created) if isinstance(created, str) else now, replayed)


def _translate(exc: Exception) -> Exception:
    from teller.storage.sqlite import translate_error  # the one adapter of sqlite3's errors

    return translate_error(exc) if isinstance(exc, sqlite3.Error) else exc
