"""One long-lived aiosqlite connection in WAL mode, with numbered migrations.

aiosqlite runs the connection in its own thread; every coroutine here shares that one
connection, so a lock keeps one transaction from interleaving with another's statements.
Migrations are ``migrations/NNNN_name.sql``, applied in order; ``PRAGMA user_version`` records
the last one applied.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from ..core.errors import StorageError

log = logging.getLogger(__name__)
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
T = TypeVar("T")


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run on the database thread: ``work`` between BEGIN IMMEDIATE and COMMIT (or ROLLBACK)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise StorageError(str(exc)) from exc
    try:
        result = work(conn)
    except sqlite3.OperationalError as exc:  # disk full, database locked, I/O error
        _rollback_quietly(conn)
        raise StorageError(str(exc)) from exc
    except BaseException:
        _rollback_quietly(conn)
        raise
    try:
        conn.commit()
    except sqlite3.Error as exc:
        _rollback_quietly(conn)
        raise StorageError(str(exc)) from exc
    return result


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.rollback()
    except sqlite3.Error:  # the failed statement may already have ended the transaction
        log.warning("rollback failed", exc_info=True)


class _StringAgg:
    """``string_agg(value, separator)`` for SQLite before 3.44: the non-NULL values joined."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.sep = ","

    def step(self, value: Any, sep: str) -> None:
        if value is not None:
            self.parts.append(str(value))
            self.sep = sep

    def finalize(self) -> str | None:
        return self.sep.join(self.parts) if self.parts else None


async def open_database(settings: Any, *, migrate: bool = True) -> Any:
    """The database the settings name: PostgreSQL for ``DATABASE_URL``, else the SQLite file."""
    if getattr(settings, "database_url", ""):
        from .pg import PgDatabase

        return await PgDatabase.open(settings.database_url, migrate=migrate, busy_timeout=settings.db_busy_timeout)
    return await Database.open(settings.database_path, migrate=migrate, busy_timeout=settings.db_busy_timeout)


def create_private(path: str) -> None:
    """Create ``path`` readable and writable by its owner only (0600), if it does not exist yet.

    The database holds owners' names and phone numbers: nobody else on the machine may read it.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def migrations(folder: str = "migrations") -> list[tuple[int, str, str]]:
    """``(number, name, sql)`` for every migration shipped with the package in ``folder``, in order
    (``migrations`` for SQLite, ``migrations_pg`` for PostgreSQL)."""
    found = []
    for entry in resources.files("bot.storage").joinpath(folder).iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise StorageError(f"migrations must be numbered 1..N without gaps, found {numbers}")
    return found


def schema_version() -> int:
    """The schema version this code expects (the number of the last migration)."""
    return len(migrations())


class Database:
    """The application's SQLite database (the only module that opens a connection)."""

    engine = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str):
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, migrate: bool = True, busy_timeout: float = 5.0) -> Database:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``busy_timeout``: seconds a statement waits for a lock held by another process (a
        backup, an admin command) before it fails with ``StorageError``.
        """
        path = str(path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            create_private(path)  # SQLite gives its -wal, -shm and -journal files the database file's mode
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in (
            # Deleted content is overwritten with zeros, not left in free space: an erased owner's
            # name must not stay readable in the file (whatever this SQLite build defaults to).
            "PRAGMA secure_delete=ON",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",  # WAL + NORMAL: durable across process crashes
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={int(busy_timeout * 1000)}",
        ):
            await conn.execute(pragma)
        if sqlite3.sqlite_version_info < (3, 44):  # string_agg is SQL (and PostgreSQL's) name for GROUP_CONCAT
            await conn._execute(conn._conn.create_aggregate, "string_agg", 2, _StringAgg)
        db = cls(conn, path)
        if migrate:
            await db.migrate()
        return db

    async def close(self) -> None:
        """Close the connection (after the current transaction)."""
        async with self._lock:
            await self.conn.close()

    async def version(self) -> int:
        """The schema version of the open database."""
        async with self.conn.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def migrate(self, target: int | None = None) -> int:
        """Apply the migrations after the current version (up to ``target``); return the version."""
        current = await self.version()
        for number, name, sql in migrations():
            if number <= current or (target is not None and number > target):
                continue
            log.info("applying migration %s", name)
            async with self._lock:
                await self.conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;")
            current = number
        return current

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run statements atomically: committed together at the end, or not at all."""
        async with self._lock:
            try:
                await self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StorageError(str(exc)) from exc
            try:
                yield self.conn
            except sqlite3.OperationalError as exc:  # disk full, database locked, I/O error
                await self._rollback()
                raise StorageError(str(exc)) from exc
            except BaseException:
                await self._rollback()
                raise
            try:
                await self.conn.commit()
            except sqlite3.Error as exc:
                await self._rollback()
                raise StorageError(str(exc)) from exc

    async def _rollback(self) -> None:
        try:
            await self.conn.rollback()
        except sqlite3.Error:  # the failed statement may already have ended the transaction
            log.warning("rollback failed", exc_info=True)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` on the database thread in one hop: for a group of reads.

        Each aiosqlite call is a round trip to its thread (a queue put, a wake-up, a callback on
        the loop); a turn's reads done as one call cost one trip instead of one per statement.
        ``work`` must be quick and must not open a transaction (use ``run_transaction``).
        """
        async with self._lock:
            try:
                # aiosqlite's own way to run a call on its thread (every public method uses it).
                return await self.conn._execute(work, self.conn._conn)
            except sqlite3.OperationalError as exc:  # database locked, I/O error
                raise StorageError(str(exc)) from exc

    async def run_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` inside BEGIN IMMEDIATE … COMMIT, in one hop to the database thread.

        Same guarantees as ``transaction()``: all of it is committed, or none of it, and SQLite
        trouble (locked, disk full) surfaces as ``StorageError``.
        """
        async with self._lock:
            return await self.conn._execute(_in_transaction, self.conn._conn, work)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """All rows of a read-only query."""
        async with self._lock:
            async with self.conn.execute(sql, tuple(params)) as cur:
                return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row of a read-only query, or ``None``."""
        async with self._lock:
            async with self.conn.execute(sql, tuple(params)) as cur:
                return await cur.fetchone()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        """One statement in its own transaction."""
        async with self.transaction() as conn:
            await conn.execute(sql, tuple(params))

    async def tables(self) -> list[str]:
        """The application's tables, by name."""
        rows = await self.fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        return [r[0] for r in rows]

    async def columns(self, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        return [r[1] for r in await self.fetchall(f'PRAGMA table_info("{table}")')]

    async def checkpoint(self) -> tuple[int, int, int]:
        """Copy the write-ahead log into the database file and truncate the log to zero bytes.

        After an erasure this is what takes the old versions of the erased rows off the disk (the
        WAL keeps every page as it was written until a checkpoint). Returns SQLite's
        ``(busy, log frames, frames checkpointed)``; ``busy`` is 1 when another process's reader
        kept it from finishing (the next checkpoint does it).
        """
        if self.path == ":memory:":
            return (0, 0, 0)
        async with self._lock:
            try:
                async with self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
                    row = await cur.fetchone()
            except sqlite3.OperationalError as exc:
                raise StorageError(str(exc)) from exc
        return int(row[0]), int(row[1]), int(row[2])

    async def backup(self, target: str | Path) -> None:
        """Copy the live database to ``target`` with SQLite's online backup API (the copy is 0600)."""
        async with self._lock:
            create_private(str(target))
            os.chmod(target, 0o600)  # a file that was there keeps its contents' new owner-only mode
            dest = await aiosqlite.connect(str(target))
            try:
                await self.conn.backup(dest)
            finally:
                await dest.close()
