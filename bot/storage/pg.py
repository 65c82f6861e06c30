"""PostgreSQL behind the same interface as the SQLite ``Database``, for ``DATABASE_URL=postgresql://…``.

The repositories are written once, in SQL that both engines run (``?`` placeholders, ``ON CONFLICT``
upserts, ``->>`` on JSON columns, ``COUNT(*) FILTER``, ``string_agg``); what differs per engine —
the schema and its migrations, locking, maintenance, backups — lives with each engine. This module
gives them what they use of ``sqlite3`` on PostgreSQL (psycopg 3 with psycopg-pool):

- ``run(work)`` / ``run_transaction(work)``: ``work(conn)`` on a worker thread with a pooled
  connection, where ``conn`` answers ``execute``/``executemany`` like a ``sqlite3.Connection``
  (rows by index and by name). ``?`` becomes ``%s`` (and a literal ``%`` becomes ``%%``) once per
  statement text. Python booleans go as 0/1, as SQLite stores them.
- ``transaction()``, ``fetchall``, ``fetchone``, ``execute``: the async forms the repositories use.

Transactions run at SERIALIZABLE isolation, so the rules the SQLite code relies on (one writer at a
time) hold across several bot processes too: a transaction PostgreSQL had to abort because another
one got in its way (serialization failure, deadlock) is run again by ``run_transaction``, up to
``RETRIES`` times. Within one process, transactions take turns on an ``asyncio.Lock`` as on
SQLite, so they never conflict with each other. JSON columns are ``jsonb`` (read back as text, as
SQLite gives them). Migrations are ``migrations_pg/NNNN_name.sql``, recorded in
``schema_migrations`` and applied under an advisory lock: two processes starting together never
both migrate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ..core.errors import StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRIES = 8
MIGRATION_LOCK = 7_345_901  # pg_advisory_lock key: "the schema is being migrated"
# The tables an owner's erasure changes (names, phone numbers, their messages and updates).
PERSONAL_TABLES = ("users", "progress", "quiz_answers", "events", "outbox", "inbox", "leads", "lead_history",
                   "certificates", "startup_staff", "chat_inbound", "broadcast_drafts", "lead_notes")


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database."""
    return url.startswith(("postgresql://", "postgres://"))


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s``, and ``%`` as ``%%``, outside quoted text."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _params(params: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class Row(tuple):
    """A result row by index and by column name, like ``sqlite3.Row``."""

    __slots__ = ()
    _index: dict[str, int]

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._index[key])
            except KeyError:
                raise IndexError(f"no such column: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = [c.name for c in cursor.description or ()]
    cls = type("Row", (Row,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})
    return lambda values: cls(values)


class Cursor:
    """What ``execute`` returns: the rows already read, ``rowcount``."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int):
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Row | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Row]:
        return list(self._rows)

    def __iter__(self):
        return iter(self._rows)


class SyncConn:
    """A pooled psycopg connection answering like a ``sqlite3.Connection`` (on a worker thread)."""

    def __init__(self, conn: Any):
        self.raw = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Cursor:
        with self.raw.cursor(row_factory=_row_factory) as cur:
            cur.execute(translate(sql), _params(params) or None)
            rows = cur.fetchall() if cur.description is not None else []
            return Cursor(rows, cur.rowcount)

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> Cursor:
        batch = [_params(p) for p in seq]
        if not batch:
            return Cursor([], 0)
        with self.raw.cursor() as cur:
            cur.executemany(translate(sql), batch)
            return Cursor([], cur.rowcount)


class AsyncCursor:
    """``await conn.execute(...)`` (or ``async with``) in ``transaction()``: rows read already."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._cursor: Cursor | None = None

    def __await__(self):
        return self._run().__await__()

    async def _run(self) -> AsyncCursor:
        self._cursor = await self._make()
        return self

    async def __aenter__(self) -> AsyncCursor:
        return await self._run()

    async def __aexit__(self, *exc: Any) -> None:
        return None

    @property
    def rowcount(self) -> int:
        assert self._cursor is not None
        return self._cursor.rowcount

    async def fetchone(self) -> Row | None:
        assert self._cursor is not None
        return self._cursor.fetchone()

    async def fetchall(self) -> list[Row]:
        assert self._cursor is not None
        return self._cursor.fetchall()


class AsyncConn:
    """The connection ``transaction()`` yields: ``await conn.execute(sql, params)``, ``executemany``."""

    def __init__(self, db: PgDatabase, conn: SyncConn):
        self._db, self._conn = db, conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> AsyncCursor:
        return AsyncCursor(lambda: self._db._call(self._conn.execute, sql, tuple(params)))

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> AsyncCursor:
        return AsyncCursor(lambda: self._db._call(self._conn.executemany, sql, [tuple(p) for p in seq]))


def _retryable(exc: BaseException) -> bool:
    import psycopg.errors as e

    return isinstance(exc, (e.SerializationFailure, e.DeadlockDetected))


def _storage_error(exc: BaseException) -> StorageError:
    return StorageError(f"PostgreSQL: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def migrations() -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` of every PostgreSQL migration shipped with the package, in order."""
    from .db import migrations as shipped

    return shipped("migrations_pg")


def schema_version() -> int:
    """The PostgreSQL schema version this code expects."""
    return len(migrations())


def lock_key(name: str) -> int:
    """A stable 63-bit advisory lock key for ``name``."""
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


class Leadership:
    """Whether this process holds the cluster-wide lock ``name``: one process at a time does the work
    that must not run twice (the delivery workers, whose rate is per bot token, and the periodic jobs).

    The lock is a session advisory lock on a connection of its own, so it goes the moment that process
    or its connection dies; the others try for it every ``retry`` seconds and one takes over. ``held``
    is set while this process has it. A holder checks its connection every ``retry`` seconds: if the
    server dropped it, the lock is gone and ``held`` is cleared at that check (so two holders can
    overlap by at most that long, after a network partition).
    """

    def __init__(self, url: str, name: str, retry: float = 2.0):
        self.url, self.name, self.key, self.retry = url, name, lock_key(name), retry
        self.held = asyncio.Event()
        self.changes = 0  # times this process took the lock

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the lock whenever it is free, until ``stop``."""
        import psycopg

        while not stop.is_set():
            conn = None
            try:
                conn = await asyncio.to_thread(psycopg.connect, self.url, autocommit=True)
                while not stop.is_set():
                    if not self.held.is_set():
                        got = await asyncio.to_thread(lambda: conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0])
                        if got:
                            self.changes += 1
                            log.info("this process now does the background work (%s)", self.name)
                            self.held.set()
                    else:
                        await asyncio.to_thread(lambda: conn.execute("SELECT 1"))  # still connected: still ours
                    try:
                        await asyncio.wait_for(stop.wait(), self.retry)
                    except asyncio.TimeoutError:
                        pass
            except psycopg.Error as exc:
                if self.held.is_set():
                    log.warning("lost the background-work lock (%s); another process takes over", type(exc).__name__)
                self.held.clear()
                try:
                    await asyncio.wait_for(stop.wait(), self.retry)
                except asyncio.TimeoutError:
                    pass
            finally:
                self.held.clear()
                if conn is not None:
                    await asyncio.to_thread(conn.close)  # the lock goes with the session


class UserLocks:
    """Per-user locks every worker on the database shares: session advisory locks, all on one connection
    of this process's own. A worker that dies takes its locks with its connection, so no lease is needed
    and nobody waits for a dead worker. Tries never wait: a user whose lock another worker holds is that
    worker's to handle (``WhatsAppChannel.drain``). Calls are serialised on the connection by a thread lock;
    a broken connection is opened again on the next call (its locks went with it)."""

    def __init__(self, url: str):
        import threading

        self.url = url
        self._conn: Any = None
        self._mutex = threading.Lock()

    def _call(self, sql: str, name: str) -> bool:
        import psycopg

        with self._mutex:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url, autocommit=True)
            try:
                return bool(self._conn.execute(sql, (lock_key(name),)).fetchone()[0])
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
                raise

    async def try_lock(self, name: str) -> bool:
        """Take the lock ``name`` if no other worker holds it; whether it was taken."""
        return await asyncio.to_thread(self._call, "SELECT pg_try_advisory_lock(%s)", name)

    async def unlock(self, name: str) -> None:
        """Let go of ``name`` (taken by ``try_lock``)."""
        await asyncio.to_thread(self._call, "SELECT pg_advisory_unlock(%s)", name)

    async def close(self) -> None:
        """Close the connection: every lock still held goes with it."""
        def close() -> None:
            with self._mutex:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await asyncio.to_thread(close)


class PgDatabase:
    """The application's PostgreSQL database (see the module docstring)."""

    engine = "postgresql"
    path = None  # no file: the server keeps the data

    def __init__(self, pool: Any, url: str, executor: concurrent.futures.ThreadPoolExecutor):
        self.pool = pool
        self.url = url
        self._executor = executor
        self._lock = asyncio.Lock()
        self.closed = False

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, busy_timeout: float = 5.0, size: int = 4) -> PgDatabase:
        """Connect a pool to ``url`` and bring the schema up to date (unless ``migrate`` is false).

        ``busy_timeout``: seconds a statement waits for a lock (``lock_timeout``) before failing.
        """
        try:
            import psycopg
            from psycopg.types.string import TextLoader
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise StorageError("DATABASE_URL names PostgreSQL, but psycopg is not installed (pip install 'psycopg[binary,pool]')") from exc

        def configure(conn: Any) -> None:
            conn.adapters.register_loader("jsonb", TextLoader)  # JSON as text, as SQLite returns it
            conn.adapters.register_loader("json", TextLoader)
            with conn.cursor() as cur:
                cur.execute(f"SET lock_timeout = {int(busy_timeout * 1000)}")
                cur.execute("SET default_transaction_isolation = 'serializable'")
                cur.execute("SET TIME ZONE 'UTC'")
                # Short queries only: JIT compiling one costs more than running it (the funnel: 1.8 s of 1.9)
                cur.execute("SET jit = off")

        executor = concurrent.futures.ThreadPoolExecutor(max_workers=size + 2, thread_name_prefix="pg")
        pool = ConnectionPool(url, min_size=1, max_size=size, open=False, configure=configure,
                              kwargs={"autocommit": True}, name="saathi")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, functools.partial(pool.open, wait=True, timeout=15))
        except (psycopg.Error, Exception) as exc:  # noqa: BLE001 - the reason, without the URL's password
            executor.shutdown(wait=False)
            raise StorageError(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
        db = cls(pool, url, executor)
        if migrate:
            await db.migrate()
        return db

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self.closed:
            raise StorageError("the database is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, functools.partial(fn, *args))
        except StorageError:
            raise
        except Exception as exc:
            import psycopg

            if isinstance(exc, psycopg.Error):
                raise _storage_error(exc) from exc
            raise

    # ---- the sqlite-like interface -------------------------------------------------------------
    def _with_conn(self, work: Callable[[SyncConn], T], transaction: bool) -> T:
        """On a worker thread: ``work`` on a pooled connection, in a transaction if asked, retried on conflicts."""
        import psycopg

        for attempt in range(RETRIES + 1):
            with self.pool.connection() as raw:
                conn = SyncConn(raw)
                try:
                    if not transaction:
                        return work(conn)
                    with raw.transaction():
                        return work(conn)
                except psycopg.Error as exc:
                    if transaction and _retryable(exc) and attempt < RETRIES:
                        time.sleep(random.uniform(0.001, 0.01) * (attempt + 1))
                        continue
                    raise _storage_error(exc) from exc
        raise AssertionError("unreachable")

    async def run(self, work: Callable[[Any], T]) -> T:
        """``work(conn)`` for a group of reads, on a worker thread, in one transaction: every read sees the
        same snapshot (a turn's "was this update handled?" and "what is the user's state?" must agree,
        whatever another process commits between them). Not serialised with this process's writes."""
        return await self._call(self._with_conn, work, True)

    async def run_transaction(self, work: Callable[[Any], T]) -> T:
        """``work(conn)`` in one SERIALIZABLE transaction, run again if PostgreSQL aborts it for a conflict."""
        async with self._lock:
            return await self._call(self._with_conn, work, True)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        params = tuple(params)
        return await self.run(lambda conn: conn.execute(sql, params).fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        params = tuple(params)
        return await self.run(lambda conn: conn.execute(sql, params).fetchone())

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        params = tuple(params)
        await self.run_transaction(lambda conn: conn.execute(sql, params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConn]:
        """Statements committed together at the end, or not at all (a conflict raises ``StorageError``)."""
        async with self._lock:
            raw = await self._call(self.pool.getconn)
            try:
                await self._call(raw.execute, "BEGIN ISOLATION LEVEL SERIALIZABLE")
                try:
                    yield AsyncConn(self, SyncConn(raw))
                except BaseException:
                    await self._call(raw.execute, "ROLLBACK")
                    raise
                await self._call(raw.execute, "COMMIT")
            finally:
                if raw.info.transaction_status != 0:  # a failed COMMIT or ROLLBACK left it in a transaction
                    try:
                        await self._call(raw.execute, "ROLLBACK")
                    except StorageError:
                        pass
                self.pool.putconn(raw)

    # ---- schema ---------------------------------------------------------------------------------
    async def version(self) -> int:
        def read(conn: SyncConn) -> int:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
            if exists is None:
                return 0
            return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0])

        return await self.run(read)

    async def migrate(self, target: int | None = None) -> int:
        """Apply the migrations after the current version (up to ``target``), holding the advisory lock."""
        plan = migrations()

        def work(conn: SyncConn) -> int:
            raw = conn.raw
            raw.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                            "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                current = raw.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
                for number, name, sql in plan:
                    if number <= current or (target is not None and number > target):
                        continue
                    log.info("applying PostgreSQL migration %s", name)
                    with raw.transaction():
                        raw.execute(sql)
                        raw.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))
                    current = number
                return int(current)
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

        async with self._lock:
            return await self._call(self._with_conn, work, False)

    async def tables(self) -> list[str]:
        """The application's tables, by name (the migrations' own record left out)."""
        rows = await self.fetchall("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                                   "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1")
        return [r[0] for r in rows]

    async def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        rows = await self.fetchall("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                                   "AND table_name = ? ORDER BY ordinal_position", (table,))
        return [r[0] for r in rows]

    async def last_run(self, job: str) -> int | None:
        """When the periodic ``job`` last ran anywhere in the cluster (Unix time), if ever."""
        row = await self.fetchone("SELECT last_at FROM job_runs WHERE name = ?", (job,))
        return int(row[0]) if row else None

    async def record_run(self, job: str, at: int) -> None:
        """``job`` ran at ``at``."""
        await self.execute("INSERT INTO job_runs (name, last_at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET last_at = excluded.last_at",
                           (job, at))

    def leadership(self, name: str, retry: float = 2.0) -> Leadership:
        """The cluster-wide lock ``name`` for this database (see ``Leadership``)."""
        return Leadership(self.url, name, retry)

    def user_locks(self) -> UserLocks:
        """Per-user locks shared with the other workers (see ``UserLocks``); the caller closes them."""
        return UserLocks(self.url)

    # ---- operations -----------------------------------------------------------------------------
    async def checkpoint(self) -> tuple[int, int, int]:
        """What SQLite's checkpoint does after an erasure, as far as PostgreSQL allows: VACUUM the tables
        that hold personal data, so the erased rows' old versions are pruned from their pages.

        The server's own write-ahead log and base backups keep them until they are recycled or expire
        (README, "PostgreSQL"). Returns ``(0, 0, 0)``: nothing was kept from finishing.
        """
        def vacuum(conn: SyncConn) -> None:
            conn.raw.execute("VACUUM " + ", ".join(PERSONAL_TABLES))

        await self._call(self._with_conn, vacuum, False)  # VACUUM runs outside a transaction
        return (0, 0, 0)

    async def close(self) -> None:
        """Close the pool (after the current transaction); closing twice is harmless."""
        if self.closed:
            return
        async with self._lock:
            await self._call(self.pool.close)
            self.closed = True
        self._executor.shutdown(wait=False)
