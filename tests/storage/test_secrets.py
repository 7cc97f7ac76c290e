"""The team secret repository, on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from builders.spec import BotSpec
from storage.bots import BotRepository
from storage.database import Database
from storage.secrets import SecretRepository
from storage.teams import TeamRepository

_TOOL = {
    "name": "crm",
    "url": "https://crm.example.com/openapi.json",
    "operations": [{"function": "getOrder", "id": "getOrder", "method": "GET", "path": "/o"}],
}


async def _team(db: Database, name: str = "acme") -> int:
    async with db.write() as session:
        team = await TeamRepository(session).create(name)
    assert team.id is not None
    return team.id


async def test_set_creates_then_replaces_one_row(any_db: Database) -> None:
    team = await _team(any_db)
    async with any_db.write() as session:
        first = await SecretRepository(session).set(team, "acme-crm", b"sealed-1", by="api:owner")
    async with any_db.write() as session:
        second = await SecretRepository(session).set(team, "acme-crm", b"sealed-2", by="slack:U1")
    assert first.created and not second.created
    assert second.updated_at >= first.updated_at
    async with any_db.read() as session:
        repo = SecretRepository(session)
        assert await repo.ciphertext(team, "acme-crm") == b"sealed-2"
        assert await repo.ciphertext(team, "other") is None
        [row] = await repo.rows(team)
    assert (row.name, row.updated_by) == ("acme-crm", "slack:U1")


async def test_racing_writers_leave_one_secret(any_db: Database) -> None:
    team = await _team(any_db)

    async def write(n: int) -> bool:
        async with any_db.write() as session:
            stored = await SecretRepository(session).set(team, "k", f"v{n}".encode(), by="x")
        return stored.created

    created = await asyncio.gather(*(write(n) for n in range(6)))
    assert created.count(True) == 1  # the upsert decides, never a read first
    async with any_db.read_conn() as conn:
        count = (await conn.execute(text("select count(*) from team_secret"))).scalar()
    assert count == 1


async def test_secrets_are_per_team_and_listed_by_name(any_db: Database) -> None:
    acme, other = await _team(any_db), await _team(any_db, "other")
    async with any_db.write() as session:
        repo = SecretRepository(session)
        for name in ("zeta", "alpha"):
            await repo.set(acme, name, b"s", by="api:owner")
        await repo.set(other, "alpha", b"theirs", by="api:owner")
    async with any_db.read() as session:
        repo = SecretRepository(session)
        assert [r.name for r in await repo.rows(acme)] == ["alpha", "zeta"]
        assert await repo.ciphertext(other, "alpha") == b"theirs"
        assert await repo.ciphertext(other, "zeta") is None


async def test_remove_says_whether_there_was_one(any_db: Database) -> None:
    team = await _team(any_db)
    async with any_db.write() as session:
        await SecretRepository(session).set(team, "k", b"s", by="x")
    async with any_db.write() as session:
        assert await SecretRepository(session).remove(team, "k")
    async with any_db.write() as session:
        assert not await SecretRepository(session).remove(team, "k")
        assert await SecretRepository(session).rows(team) == []


def _spec(name: str, auth: str | None = None) -> BotSpec:
    tools = [{**_TOOL, "auth": auth}] if auth else []
    return BotSpec.model_validate({"name": name, "tools": tools})


async def test_used_by_reads_drafts_and_the_versions_environments_run(any_db: Database) -> None:
    team, elsewhere = await _team(any_db), await _team(any_db, "elsewhere")
    async with any_db.write() as session:
        bots = BotRepository(session)
        await bots.create(team, _spec("a-bot", "crm"))  # its draft uses it
        live = await bots.create(team, _spec("b-bot"))
        version = await bots.add_version(live, _spec("b-bot", "crm"), created_by="x")
        assert live.id is not None and version.id is not None
        await bots.set_pointer(live.id, "production", version.id)  # production uses it
        await bots.create(team, _spec("c-bot", "other"))
        await bots.create(elsewhere, _spec("d-bot", "crm"))  # another team's: never counted
    async with any_db.read() as session:
        used = await SecretRepository(session).used_by(team)
    assert used == {"crm": ["a-bot", "b-bot"], "other": ["c-bot"]}
