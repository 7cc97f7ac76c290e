"""`Database.run_write`: each job in its own write transaction, committed or rolled back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from storage import inbox as inbox_store
from storage.database import Database


def _record(key: str) -> Callable[[Connection], int | None]:
    def job(conn: Connection) -> int | None:
        return inbox_store.record_inbound(
            conn, dedupe_key=key, deployment_id="d", conversation="c", payload={}, worker=None
        )

    return job


async def _keys(db: Database) -> list[str]:
    async with db.read_conn() as conn:
        rows = await conn.execute(text("SELECT dedupe_key FROM inbox ORDER BY id"))
        return [row[0] for row in rows]


async def test_a_failed_write_is_rolled_back_and_the_next_one_commits(db: Database) -> None:
    def fails(conn: Connection) -> None:
        inbox_store.record_inbound(
            conn, dedupe_key="lost", deployment_id="d", conversation="c", payload={}, worker=None
        )
        raise RuntimeError("the job failed")

    assert await db.run_write(_record("first")) is not None
    with pytest.raises(RuntimeError):
        await db.run_write(fails)
    assert await db.run_write(_record("second")) is not None
    assert await _keys(db) == ["first", "second"]


async def test_a_write_after_the_connection_was_invalidated_gets_a_new_one(db: Database) -> None:
    def breaks(conn: Connection) -> None:
        conn.invalidate()  # what a lost connection looks like to the next transaction
        raise RuntimeError("the connection went")

    with pytest.raises(RuntimeError):
        await db.run_write(breaks)
    assert await db.run_write(_record("after")) is not None
    assert await _keys(db) == ["after"]


async def test_a_write_the_database_is_locked_for_fails_as_sqlalchemy_says(
    db: Database, tmp_path: Path
) -> None:
    """BEGIN IMMEDIATE past the busy timeout (another process writing) raises SQLAlchemy's
    OperationalError, and the writer goes on once the other process is done."""

    def impatient(conn: Connection) -> None:
        conn.exec_driver_sql("PRAGMA busy_timeout=50")  # the writer's connection is kept

    await db.run_write(impatient)
    other = sqlite3.connect(tmp_path / "studio.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"):
        await db.run_write(_record("refused"))
    other.execute("ROLLBACK")
    other.close()
    assert await db.run_write(_record("later")) is not None
    assert await _keys(db) == ["later"]
