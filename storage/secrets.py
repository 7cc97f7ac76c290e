"""Team secrets: one row per team and name, holding only the value's ciphertext, and which bots'
tools name each secret (the drafts and the versions environments run)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import Bot, BotVersion, EnvironmentPointer, TeamSecret, utcnow

_secret = TeamSecret.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SecretRow:
    """A secret as listed: never its value."""

    name: str
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class Stored:
    """What a `set` did: `created` (no secret of that name before) or replaced."""

    created: bool
    updated_at: datetime


class SecretRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def set(self, team_id: int, name: str, ciphertext: bytes, *, by: str) -> Stored:
        """Create or replace the secret in one statement (an upsert: two writers cannot both
        insert). On insert both times are `now`; on update `created_at` keeps its old value,
        which is how the answer tells the two apart."""
        dialect = sqlite if self.session.get_bind().dialect.name == "sqlite" else postgresql
        now = utcnow()
        statement = dialect.insert(_secret).values(
            team_id=team_id,
            name=name,
            ciphertext=ciphertext,
            created_at=now,
            updated_at=now,
            updated_by=by,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["team_id", "name"],
            set_={"ciphertext": ciphertext, "updated_at": now, "updated_by": by},
        ).returning(_secret.c.created_at, _secret.c.updated_at)
        created_at, updated_at = (await self.session.exec(upsert)).one()
        return Stored(created=created_at == updated_at, updated_at=updated_at)

    async def ciphertext(self, team_id: int, name: str) -> bytes | None:
        query = select(TeamSecret.ciphertext).where(
            TeamSecret.team_id == team_id, TeamSecret.name == name
        )
        return (await self.session.exec(query)).first()

    async def rows(self, team_id: int) -> list[SecretRow]:
        """The team's secrets by name (no ciphertext is read)."""
        query = (
            select(TeamSecret.name, TeamSecret.updated_at, TeamSecret.updated_by)
            .where(TeamSecret.team_id == team_id)
            .order_by(col(TeamSecret.name))
        )
        rows = (await self.session.exec(query)).all()
        return [SecretRow(name, updated_at, updated_by) for name, updated_at, updated_by in rows]

    async def remove(self, team_id: int, name: str) -> bool:
        """Delete the secret; False when there was none (the row count decides)."""
        statement = delete(_secret).where(_secret.c.team_id == team_id, _secret.c.name == name)
        return bool((await self.session.exec(statement)).rowcount)

    async def used_by(self, team_id: int) -> dict[str, list[str]]:
        """Secret name -> the team's bots (sorted) whose tools name it as their `auth`, in the
        draft or in a version an environment runs."""
        drafts = select(Bot.name, col(Bot.draft)).where(Bot.team_id == team_id)
        live = (
            select(Bot.name, col(BotVersion.spec))
            .join(EnvironmentPointer, col(EnvironmentPointer.bot_id) == col(Bot.id))
            .join(BotVersion, col(BotVersion.id) == col(EnvironmentPointer.version_id))
            .where(Bot.team_id == team_id)
        )
        users: dict[str, set[str]] = {}
        for query in (drafts, live):
            for bot, spec in (await self.session.exec(query)).all():
                for name in _auths(spec):
                    users.setdefault(name, set()).add(bot)
        return {name: sorted(bots) for name, bots in users.items()}


def _auths(spec: dict[str, Any]) -> Iterable[str]:
    """The secret names a stored spec's tools use."""
    for tool in spec.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("auth"), str):
            yield tool["auth"]
