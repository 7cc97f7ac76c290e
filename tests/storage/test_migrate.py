"""Two workers started at once migrate one fresh PostgreSQL database: one migrates, the other
waits for its lock and finds the schema at head; neither fails."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from storage.database import Database
from storage.migrate import migrate, revisions
from tests.conftest import drop_postgres_database, fresh_postgres_database

pytestmark = pytest.mark.postgres


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
