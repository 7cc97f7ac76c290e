"""A fresh, migrated PostgreSQL database per test, shared by the workers a test starts; two
whole services on one, as two `serve` processes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from runtime.llm import import_litellm
from storage.database import Database
from tests.conftest import (
    drop_postgres_database,
    migrated_postgres_database,
    running_service,
    service_settings,
)
from tests.factories import Service


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    url = await migrated_postgres_database(postgres_url)
    db = Database(url)
    yield db
    await db.dispose()
    await drop_postgres_database(postgres_url, url)


@asynccontextmanager
async def two_workers(
    tmp_path: Path, postgres_url: str, **settings: Any
) -> AsyncIterator[tuple[Service, Service]]:
    """Two whole services (as two `serve` processes) on one fresh PostgreSQL database, with
    the same `settings` besides."""
    # Imported once before: two services importing it at once in one process can deadlock
    # (two `serve` processes each import their own).
    await asyncio.to_thread(import_litellm)
    url = await migrated_postgres_database(postgres_url)
    try:
        async with AsyncExitStack() as stack:
            started: list[Service] = []
            for name in ("a", "b"):
                given = service_settings(
                    tmp_path / name, database_url=url, secret_key="test-secret", **settings
                )
                if started:  # the team exists: its owner key is the first worker's
                    given.data_dir.mkdir(parents=True)
                    shutil.copy(started[0].settings.data_dir / "local.key", given.data_dir)
                started.append(await stack.enter_async_context(running_service(given)))
            yield started[0], started[1]
    finally:
        await drop_postgres_database(postgres_url, url)
