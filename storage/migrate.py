"""Bring the database schema up to date with Alembic; the service calls this on start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Any = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database) -> None:
    def _upgrade(connection: Any) -> None:
        command.upgrade(alembic_config(connection), "head")

    async with db.write_conn() as conn:
        await conn.run_sync(_upgrade)


async def autogenerate(db: Database, message: str) -> None:
    """Write a new revision from the difference between the tables and the database (developers)."""

    def _revision(connection: Any) -> None:
        command.revision(alembic_config(connection), message=message, autogenerate=True)

    async with db.write_conn() as conn:
        await conn.run_sync(_revision)
