"""A fresh, migrated PostgreSQL database per test, shared by the workers a test starts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from storage.database import Database
from storage.migrate import migrate
from tests.conftest import drop_postgres_database, fresh_postgres_database


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    url = await fresh_postgres_database(postgres_url)
    db = Database(url)
    await migrate(db)
    yield db
    await db.dispose()
    await drop_postgres_database(postgres_url, url)
