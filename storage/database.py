"""The async engine and session factory, and `run_write` for the hot path.

SQLite: WAL, `synchronous=NORMAL`, foreign keys on, and write transactions opened with
`BEGIN IMMEDIATE`, because a deferred transaction that reads and then writes fails with
SQLITE_BUSY when another writer commits in between, whatever the busy timeout.

`run_write(job)` runs a transaction written as plain SQLAlchemy Core on a `Connection`. On SQLite
it runs in one dedicated writer thread on the stdlib driver: one thread hop per transaction
instead of several per statement through aiosqlite (measured: 0.6 ms of CPU per turn instead of
1.9 ms). On PostgreSQL it runs through asyncpg with `run_sync`. Either way the event loop never
blocks and the job is written once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

_WRITE = "studio_write"
T = TypeVar("T")


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin(dbapi_connection: Any, *, write: bool) -> None:
    """BEGIN (IMMEDIATE for a write) on the driver's connection: through SQLAlchemy's statement
    machinery it costs more CPU than the BEGIN itself, on every transaction. A failure (the
    database locked past the busy timeout) raises SQLAlchemy's error, as a statement's would."""
    statement = "BEGIN IMMEDIATE" if write else "BEGIN"
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
    except Exception as exc:
        raise DBAPIError.instance(statement, None, exc, Exception) from exc
    finally:
        cursor.close()


def _sqlite_hooks(engine: Engine) -> None:
    event.listen(engine, "connect", _on_connect)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        _begin(conn.connection.dbapi_connection, write=write)


def worker_name() -> str:
    """This process as the database sees it (PostgreSQL's `application_name`): the host and the
    pid for people, and a random part, since a restarted container has the same host and pid
    as the process that died (whose runs must not look alive)."""
    return f"studio:{socket.gethostname()[:24]}:{os.getpid()}:{secrets.token_hex(3)}"


READERS = 16  # SQLite connections kept for reads (the default 5 made 16 busy clients reconnect)


class Database:
    """One engine per process; `read()` and `write()` hand out sessions or connections."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.worker = worker_name()
        # Every connection names its worker, so the server knows which workers are alive
        # (`runtime.cluster.presence`).
        self.connect_args: dict[str, Any] = (
            {"server_settings": {"application_name": self.worker}}
            if parsed.get_driver_name() == "asyncpg"
            else {}
        )
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"echo": echo}
        if not self.is_sqlite:
            # pre-ping: connections a database restart closed are replaced, not handed out
            kwargs.update(
                pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=self.connect_args
            )
        else:  # readers: a connection (and its thread) each; kept, not opened per busy moment
            kwargs.update(pool_size=READERS, max_overflow=READERS)
        self.engine = create_async_engine(url, **kwargs)
        self._writer = self.engine.execution_options(**{_WRITE: True})
        self._sync_writer: Engine | None = None
        self._sync_conn: Connection | None = None  # the writer thread's own, kept open
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _sqlite_hooks(self.engine.sync_engine)
            sync_url = make_url(url).set(drivername="sqlite")
            self._sync_writer = create_engine(sync_url, pool_size=1, max_overflow=0)
            # Its transactions are begun in `_sync_transaction`, not by a "begin" event: any
            # engine event sends every statement through SQLAlchemy's event dispatch.
            event.listen(self._sync_writer, "connect", _on_connect)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    def asyncpg_options(self, *, name: str | None = None) -> dict[str, Any]:
        """`asyncpg.connect`'s arguments for a connection kept outside the pool (locks,
        `LISTEN`): the URL's host, credentials and options (`?ssl=require`) as SQLAlchemy reads
        them, and the worker's name (or `name`) as its `application_name`."""
        _, options = self.engine.dialect.create_connect_args(make_url(self.url))
        for own in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            options.pop(own, None)  # SQLAlchemy's, not asyncpg's
        settings = dict(options.pop("server_settings", None) or {})
        settings["application_name"] = name or self.worker
        return {**options, "server_settings": settings}

    @property
    def sqlite_path(self) -> Path | None:
        database = make_url(self.url).database
        if self.is_sqlite and database and database != ":memory:":
            return Path(database).resolve()
        return None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction: committed on success, rolled back on error."""
        async with AsyncSession(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    @asynccontextmanager
    async def write_conn(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in one write transaction, for the hot path (no ORM overhead)."""
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read_conn(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def run_write(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in one write transaction (committed on return, rolled back on error)."""
        if self._sync_writer is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._writer_thread, self._sync_transaction, job)
        async with self._writer.begin() as conn:
            return await conn.run_sync(job)

    def _sync_transaction(self, job: Callable[[Connection], T]) -> T:
        """In the writer thread, on its one connection: kept open rather than taken from the
        pool and given back for every transaction (measured: a third of the writer's CPU per
        turn); one a failure left unusable is let go and a new one opened."""
        assert self._sync_writer is not None
        conn = self._sync_conn
        if conn is None or conn.invalidated or conn.in_transaction():
            if conn is not None:
                conn.invalidate()  # never rolled back or reused: the driver's is dropped
                conn.close()
            conn = self._sync_conn = self._sync_writer.connect()
        with conn.begin():
            _begin(conn.connection.dbapi_connection, write=True)
            return job(conn)

    def _close_sync(self) -> None:
        assert self._sync_writer is not None
        if self._sync_conn is not None:
            self._sync_conn.close()
            self._sync_conn = None
        self._sync_writer.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._sync_writer is not None and self._writer_thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._close_sync)
            self._writer_thread.shutdown(wait=False)
