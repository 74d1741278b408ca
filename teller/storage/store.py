"""The storage interface every backend implements, and its portable query rules.

Flow repositories (``teller/storage/<flow>.py``) talk to a :class:`Store` only through these
five calls, so nothing above ``teller/storage/`` knows whether SQLite or PostgreSQL runs::

    row  = await store.fetch_one("SELECT * FROM users WHERE id = ?", user_id)   # dict | None
    rows = await store.fetch_all("SELECT * FROM deposits WHERE user_id = ? ORDER BY id DESC LIMIT ?", uid, 50)
    n    = await store.execute("UPDATE deposits SET status = 'orphaned' WHERE id = ?", dep_id)
    ns   = await store.run_atomic([Write("INSERT ...", (a, b)), Write("UPDATE ...", (c,), expect_rows=1)])

Rules of the portable dialect:

1. Placeholders are ``?``, positional; PostgreSQL gets them rewritten to ``$1..$n`` (a ``?``
   inside a quoted literal is left alone). Never build SQL from values.
2. Write the common subset of SQLite 3.35+ and PostgreSQL 15: ``INSERT … ON CONFLICT (…) DO
   NOTHING | DO UPDATE SET x = excluded.x``, ``RETURNING``, partial indexes, ``LIMIT``. No
   ``now()`` in statements: pass an aware ``datetime`` (``utc_now()``) or rely on column defaults.
3. Pass the Python type of the column: ``int`` for integer and amount columns, ``str`` for text,
   aware ``datetime`` for ``*_at`` columns, ``None`` for NULL. PostgreSQL is strict about it.
4. Column naming carries the type back: a column (or alias) ending in ``_minor`` or ``_wei`` is an
   amount and comes back as ``int``; one ending in ``_at`` is a timestamp and comes back as an aware
   UTC ``datetime`` — on both backends. Amounts are exact (NUMERIC(78,0) / decimal TEXT), so never
   compare or add amount columns in SQL (TEXT compares as text on SQLite): do it in Python or use
   the ledger.
5. Rows are plain ``dict`` objects keyed by column name.
6. ``run_atomic`` runs its writes in one transaction, in order; ``expect_rows`` makes a write that
   touched another number of rows abort the whole unit with :class:`StaleWrite`. A write with a
   ``check`` is a read inside the unit: its rows go to ``check``, which raises (a ``TellerError``)
   to abort the unit - a limit checked in the very transaction that would exceed it. A unique or
   foreign-key violation raises :class:`UniqueViolation` / :class:`IntegrityViolation` (no partial
   effect). Money moves only through the ledger (``store.ledger``), never through raw writes.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teller.storage.ledger import Ledger
    from teller.storage.ledger_types import Outcome, TransferRequest
    from teller.storage.outbox import Outbox
    from teller.storage.users import Users

__all__ = [
    "Store",
    "Write",
    "Row",
    "StorageError",
    "IntegrityViolation",
    "UniqueViolation",
    "StaleWrite",
    "utc_now",
]

Row = dict[str, Any]


class StorageError(Exception):
    """The database failed or refused (a bug or an outage, not a user error)."""


class IntegrityViolation(StorageError):
    """A constraint (foreign key, check, not null, unique) refused a write."""


class UniqueViolation(IntegrityViolation):
    """A unique constraint refused a write: the thing already exists."""


class StaleWrite(StorageError):
    """A ``Write`` with ``expect_rows`` touched another number of rows: what it assumed changed."""


@dataclass(frozen=True, slots=True)
class Write:
    """One statement of an atomic unit (``run_atomic``, or a ledger transfer's ``writes=``).

    With ``check``, the statement is a query: its rows (normalized, as ``fetch_all`` returns them)
    are passed to ``check``, which raises to abort the unit (the ledger: that transfer alone)."""

    sql: str
    params: Sequence[Any] = field(default=())
    expect_rows: int | None = None
    check: Callable[[list[Row]], None] | None = None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def normalize_row(row: Mapping[str, Any]) -> Row:
    """Give both backends' rows the same Python types (rule 4 of the module docstring)."""
    out: Row = {}
    for name, value in row.items():
        if value is not None:
            if name.endswith(("_minor", "_wei")):
                value = int(value) if isinstance(value, (str, Decimal, int)) else value
            elif name.endswith("_at") and isinstance(value, str):
                value = parse_ts(value)
        out[name] = value
    return out


def parse_ts(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_ts(value: datetime) -> str:
    """The one text form of a timestamp on SQLite; sorts the same as the instant it names."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


class Store(abc.ABC):
    """One open database. Get one with ``await open_store(url)``; ``await store.close()`` at the end.

    ``store.ledger``, ``store.users`` and ``store.outbox`` are the repositories built in.
    """

    backend: str  # "sqlite" | "postgresql": for logs and metrics only, never for branching above storage

    ledger: Ledger
    users: Users
    outbox: Outbox

    @abc.abstractmethod
    async def fetch_one(self, sql: str, *params: Any) -> Row | None: ...

    @abc.abstractmethod
    async def fetch_all(self, sql: str, *params: Any) -> list[Row]: ...

    async def fetch_small(self, sql: str, *params: Any) -> list[Row]:
        """``fetch_all`` for a short indexed read (a handful of rows, no scan) on a hot path. A backend
        may answer it on the caller's thread, skipping a thread hop that costs more than the read."""
        return await self.fetch_all(sql, *params)

    @abc.abstractmethod
    async def execute(self, sql: str, *params: Any) -> int:
        """Run one statement; the number of rows it touched."""

    @abc.abstractmethod
    async def run_atomic(self, writes: Sequence[Write]) -> list[int]:
        """Run the writes in one transaction; the rows each touched. All or nothing."""

    @abc.abstractmethod
    async def apply_transfers(self, batch: Sequence[TransferRequest]) -> list[Outcome]:
        """The ledger engine: one DB transaction for the batch, one outcome per request."""

    @abc.abstractmethod
    async def _close_backend(self) -> None: ...

    def _attach_repositories(self) -> None:
        from teller.storage.ledger import Ledger
        from teller.storage.outbox import Outbox
        from teller.storage.users import Users

        self.ledger = Ledger(self)
        self.users = Users(self)
        self.outbox = Outbox(self)

    async def close(self) -> None:
        """Drain the ledger's queue (every accepted transfer gets its answer), then disconnect."""
        await self.ledger.close()
        await self._close_backend()
