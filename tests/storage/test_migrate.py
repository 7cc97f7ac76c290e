"""Two workers started at once migrate one fresh PostgreSQL database: one migrates, the other
waits for its lock and finds the schema at head; neither fails. Migrations that move data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text

from storage.database import Database
from storage.migrate import alembic_config, migrate, revisions
from tests.conftest import (
    BOTH_DATABASES,
    a_database,
    drop_postgres_database,
    fresh_postgres_database,
)


@pytest.fixture(params=BOTH_DATABASES)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no schema yet: a SQLite file, and PostgreSQL when available."""
    async with a_database(request, tmp_path) as db:
        yield db


async def _upgrade(db: Database, revision: str) -> None:
    def upgrade(connection: Any) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.write_conn() as conn:
        await conn.run_sync(upgrade)


async def test_messages_waiting_at_the_upgrade_name_their_conversation(empty_db: Database) -> None:
    await _upgrade(empty_db, "0012")
    insert = text(
        "INSERT INTO inbox (dedupe_key, deployment_id, payload, status, received_at) "
        "VALUES (:k, 'd', :p, :s, CURRENT_TIMESTAMP)"
    )
    async with empty_db.write_conn() as conn:
        for key, status in (("waiting", "pending"), ("answered", "done")):
            payload = {"address": {"conversation": f"chat-{key}"}, "text": "hi"}
            await conn.execute(insert, {"k": key, "p": json.dumps(payload), "s": status})
    await migrate(empty_db)
    async with empty_db.read_conn() as conn:
        rows = (await conn.execute(text("SELECT dedupe_key, conversation FROM inbox"))).all()
    assert sorted(tuple(row) for row in rows) == [("answered", None), ("waiting", "chat-waiting")]


@pytest.mark.postgres
async def test_two_workers_migrating_at_once_both_succeed(postgres_url: str) -> None:
    url = await fresh_postgres_database(postgres_url)
    workers = [Database(url), Database(url)]
    try:
        await asyncio.gather(*(migrate(db) for db in workers))
        for db in workers:
            current, head = await revisions(db)
            assert current == head is not None
        async with workers[0].read_conn() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert len(versions) == 1
        await migrate(workers[1])  # at head: nothing to do, and the lock was let go
    finally:
        for db in workers:
            await db.dispose()
        await drop_postgres_database(postgres_url, url)
