"""`/readyz` of two workers on one PostgreSQL: one leads, the other follows; while the database
refuses connections both are not ready, and both are ready again once it is back (the pool
replaces the connections the outage closed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import (
    drop_postgres_database,
    fresh_postgres_database,
    running_service,
    service_settings,
)
from tests.factories import Service

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    url = await fresh_postgres_database(postgres_url)
    yield url
    await drop_postgres_database(postgres_url, url)


async def _admin(postgres_url: str, sql: str) -> None:
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _readyz(service: Service) -> httpx.Response:
    return await service.client.get("/readyz")


async def _until(service: Service, status: int, role: str | None = None) -> dict[str, str]:
    deadline = time.monotonic() + 20
    while True:
        response = await _readyz(service)
        body = response.json()
        if response.status_code == status and role in (None, body["role"]):
            return body  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"still {response.status_code}: {body}"
        await asyncio.sleep(0.2)


async def test_two_workers_say_their_roles_and_survive_a_database_outage(
    tmp_path: Path, postgres_url: str, database: str
) -> None:
    settings = service_settings(tmp_path, database_url=database, secret_key="k" * 32)
    name = database.rsplit("/", 1)[1]
    async with running_service(settings) as first, running_service(settings) as second:
        one, other = await _until(first, 200), await _until(second, 200)
        assert (one["role"], other["role"]) == ("leader", "follower")
        assert one["worker"] != other["worker"]

        # The outage: no new connections, and the open ones (pool, leader lock) are closed.
        await _admin(postgres_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await _admin(
            postgres_url,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        down = await _until(first, 503)
        assert down["status"] == "not ready" and down["error"].startswith("database: ")
        await _until(second, 503)

        await _admin(postgres_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await _until(first, 200)
        await _until(second, 200)
        # Both lost the lock with their connections; one of them leads again within seconds.
        deadline = time.monotonic() + 10
        while True:
            roles = sorted([(await _readyz(s)).json()["role"] for s in (first, second)])
            if roles == ["follower", "leader"]:
                break
            assert time.monotonic() < deadline, roles
            await asyncio.sleep(0.2)
