"""Bring the database schema up to date with Alembic; the service calls this on start."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock's key for migrating (any constant the project owns).
MIGRATION_LOCK = 0x5C4E_A1E3


def alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database) -> None:
    """Upgrade to head in one transaction. Workers started at once on PostgreSQL take turns: the
    first holds a transaction-level lock while it migrates, the others wait for it and then
    find the schema at head (one process serves a SQLite file)."""

    def _upgrade(connection: Any) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with db.write_conn() as conn:
        if not db.is_sqlite:  # taken before Alembic reads the version: read after the wait
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


async def revisions(db: Database) -> tuple[str | None, str | None]:
    """The database's migration revision and the code's head (equal when up to date)."""

    def _current(connection: Any) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.read_conn() as conn:
        current = await conn.run_sync(_current)
    return current, await asyncio.to_thread(_head)


@functools.cache
def _head() -> str | None:
    """Read once: the migration scripts do not change while the process runs."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def autogenerate(db: Database, message: str) -> None:
    """Write a new revision from the difference between the tables and the database (developers)."""

    def _revision(connection: Any) -> None:
        command.revision(alembic_config(connection), message=message, autogenerate=True)

    async with db.write_conn() as conn:
        await conn.run_sync(_revision)


if __name__ == "__main__":  # `make migration m="what changed"`
    import asyncio
    import os
    import sys
    import tempfile

    async def _main(message: str) -> None:
        # Diff the tables against a fresh database at head, so the revision holds only the change.
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(
                os.environ.get("MIGRATION_DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/m.db")
            )
            await migrate(db)
            await autogenerate(db, message)
            await db.dispose()

    asyncio.run(_main(" ".join(sys.argv[1:]) or "schema change"))
