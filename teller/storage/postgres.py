"""The PostgreSQL backend: an asyncpg pool, ``?`` placeholders rewritten to ``$n``.

``postgresql://user@host:port/db?schema=name`` puts every table in ``name`` (created if missing)
through the connections' ``search_path``; tests give each test its own schema this way.
Many Teller processes may share one database: correctness lives in constraints, row locks and
conditional updates (see ``_pg_function``), never in in-process locks.

Durability: every connection of the pool runs with ``synchronous_commit = on``, so COMMIT returns
only once the commit's WAL is flushed to disk (a signed withdrawal is stored before it is
broadcast, and a power cut cannot take it back). It is sent as a startup setting, which outranks
the server's, the database's and the role's defaults and a ``synchronous_commit=`` in the URL,
and read back on every new connection (``_require_synchronous_commit``); nothing in this package
sets it per transaction or per function. It holds only if the server itself runs ``fsync = on``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from teller.storage import _engine_pg
from teller.storage._pg_function import APPLY_MOVES_SQL, APPLY_TRANSFERS_V2_SQL
from teller.storage.ledger_types import Outcome, TransferRequest
from teller.storage.schema import MIGRATIONS, render
from teller.storage.store import (
    IntegrityViolation,
    Row,
    StorageError,
    Store,
    UniqueViolation,
    Write,
    normalize_row,
)

__all__ = ["PostgresStore", "translate_error", "translate_placeholders", "split_schema"]

POOL_SIZE_MAX = 10
BATCH_RETRIES_MAX = 5          # deadlock / serialization failures of a whole ledger batch
_MIGRATION_LOCK = 0x7E11E7     # advisory lock id: one migrator at a time per database
SYNCHRONOUS_COMMIT = "on"      # COMMIT waits for the local WAL flush (see the docstring)


def translate_error(exc: BaseException) -> StorageError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityViolation(str(exc))
    return StorageError(f"{type(exc).__name__}: {exc}")


@functools.lru_cache(maxsize=2048)
def translate_placeholders(sql: str) -> str:
    """``?`` -> ``$1..$n`` outside quoted literals and identifiers."""
    out: list[str] = []
    quote = ""
    n = 0
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            n += 1
            out.append(f"${n}")
            continue
        out.append(ch)
    return "".join(out)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our ``schema=`` parameter out of the URL (asyncpg would send it as a server setting)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    dsn = urlunsplit((parts.scheme.replace("postgres", "postgresql", 1) if parts.scheme == "postgres" else parts.scheme,
                      parts.netloc, parts.path, rest, parts.fragment))
    if schema is not None and not schema.replace("_", "").isalnum():
        raise ValueError("schema names are letters, digits and underscores")
    return dsn, schema


async def _require_synchronous_commit(conn: asyncpg.Connection) -> None:
    """Each new pool connection: check the startup setting took (a pooler in between may drop it)."""
    value = await conn.fetchval("SHOW synchronous_commit")
    if value != SYNCHRONOUS_COMMIT:
        raise StorageError(f"PostgreSQL runs this connection with synchronous_commit={value}, not"
                           f" {SYNCHRONOUS_COMMIT}: commits would not survive a power cut")


class PostgresStore(Store):
    backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        dsn, schema = split_schema(url)
        # ours last: asyncpg merges the URL's query parameters first, then these over them
        settings = {**({"search_path": schema} if schema else {}), "synchronous_commit": SYNCHRONOUS_COMMIT}
        try:
            if schema:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                except asyncpg.UniqueViolationError:
                    pass  # created concurrently by another process
                finally:
                    await conn.close()
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE_MAX, server_settings=settings,
                                             init=_require_synchronous_commit)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise translate_error(exc) from exc
        store = cls(pool)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        store._attach_repositories()
        return store

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                               " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                if migration.sql:
                    await conn.execute(render(migration.sql, "postgresql"))
                if migration.postgresql_only:
                    await conn.execute(migration.postgresql_only)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                   migration.version, migration.name)
            # The ledger's batch function is code, not data: (re)installed at every open, like a
            # repeatable migration, under the migration lock. A new version gets a new name, so
            # processes still running the old code keep their old function.
            await conn.execute(APPLY_TRANSFERS_V2_SQL)
            await conn.execute(APPLY_MOVES_SQL)

    async def fetch_one(self, sql: str, *params: Any) -> Row | None:
        try:
            row = await self._pool.fetchrow(translate_placeholders(sql), *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise translate_error(exc) from exc
        return normalize_row(row) if row is not None else None

    async def fetch_all(self, sql: str, *params: Any) -> list[Row]:
        try:
            rows = await self._pool.fetch(translate_placeholders(sql), *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise translate_error(exc) from exc
        return [normalize_row(r) for r in rows]

    async def execute(self, sql: str, *params: Any) -> int:
        try:
            status = await self._pool.execute(translate_placeholders(sql), *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise translate_error(exc) from exc
        return _engine_pg._rowcount(status)

    async def run_atomic(self, writes: Sequence[Write]) -> list[int]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                counts = await _engine_pg.run_writes(conn, writes, translate_placeholders)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise translate_error(exc) from exc
        return counts

    async def apply_transfers(self, batch: Sequence[TransferRequest]) -> list[Outcome]:
        for attempt in range(BATCH_RETRIES_MAX):
            try:
                async with self._pool.acquire() as conn:
                    return await _engine_pg.apply_batch(conn, batch, translate_placeholders)
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
                if attempt == BATCH_RETRIES_MAX - 1:
                    raise translate_error(exc) from exc
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise translate_error(exc) from exc
        raise AssertionError("unreachable")

    async def _close_backend(self) -> None:
        await self._pool.close()
