"""Which workers are gone: with SQLite every other one; with PostgreSQL those with no connection
named after them for a while (a live worker's connections are back by then)."""

from __future__ import annotations

import pytest

from runtime.cluster.presence import LocalPresence, PostgresPresence
from storage.database import Database


async def test_alone_every_other_worker_is_gone() -> None:
    assert await LocalPresence("me").gone(["me", "before", "older"]) == {"before", "older"}


@pytest.mark.postgres
async def test_a_worker_is_gone_once_missing_for_a_while(pg: Database) -> None:
    other = Database(pg.url)  # another worker, alive while it has a connection open
    now = [0.0]
    presence = PostgresPresence(pg, after_s=15, clock=lambda: now[0])
    try:
        async with other.read_conn():
            assert await presence.gone([other.worker, "dead"]) == set()  # first seen missing
            now[0] = 15
            assert await presence.gone([other.worker, "dead"]) == {"dead"}
        await other.dispose()  # its connections close: missing from now
        assert await presence.gone([other.worker]) == set()
        now[0] = 29
        assert await presence.gone([other.worker]) == set()
        now[0] = 30
        assert await presence.gone([other.worker]) == {other.worker}
        assert await presence.gone([]) == set()
    finally:
        await other.dispose()


@pytest.mark.postgres
async def test_asking_after_other_workers_forgets_none_of_those_asked_before(
    pg: Database,
) -> None:
    now = [0.0]
    presence = PostgresPresence(pg, after_s=15, clock=lambda: now[0])
    assert await presence.gone(["test-runs-worker"]) == set()
    now[0] = 10
    assert await presence.gone([]) == set()  # (the evaluations' sweep: none running)
    assert await presence.gone(["eval-runs-worker"]) == set()
    now[0] = 15
    assert await presence.gone(["test-runs-worker", "eval-runs-worker"]) == {"test-runs-worker"}
