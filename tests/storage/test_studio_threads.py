"""The Studio's channel threads: remembered, refreshed by use, forgotten once idle."""

from __future__ import annotations

from datetime import timedelta

from storage import studio_threads
from storage.database import Database
from storage.tables import utcnow
from storage.teams import TeamRepository


async def test_a_thread_is_remembered_refreshed_and_forgotten_when_idle(any_db: Database) -> None:
    async with any_db.write() as session:
        team = await TeamRepository(session).create("threads")
    assert team.id is not None
    team_id = team.id

    await any_db.run_write(lambda c: studio_threads.remember(c, key="C1:1.0", team_id=team_id))
    await any_db.run_write(lambda c: studio_threads.remember(c, key="C1:1.0", team_id=team_id))
    async with any_db.read_conn() as conn:
        assert await studio_threads.known(conn, "C1:1.0")
        assert not await studio_threads.known(conn, "C1:2.0")

    await any_db.run_write(lambda c: studio_threads.expire(c, before=utcnow() - timedelta(days=1)))
    async with any_db.read_conn() as conn:
        assert await studio_threads.known(conn, "C1:1.0")  # in use a moment ago
    await any_db.run_write(lambda c: studio_threads.expire(c, before=utcnow() + timedelta(days=1)))
    async with any_db.read_conn() as conn:
        assert not await studio_threads.known(conn, "C1:1.0")
