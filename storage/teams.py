"""Teams, members and API keys."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import add_unique
from storage.tables import ApiKey, Member, Team

KEY_PREFIX = "cs_"


def hash_key(plain: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(plain.encode()).hexdigest()


class TeamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str) -> Team:
        team = Team(name=name)
        await add_unique(self.session, team, f"a team named '{name}' exists")
        return team

    async def by_name(self, name: str) -> Team | None:
        return (await self.session.exec(select(Team).where(Team.name == name))).first()

    async def by_id(self, team_id: int) -> Team | None:
        return await self.session.get(Team, team_id)

    async def member(self, team_id: int, identity: str) -> Member | None:
        query = select(Member).where(Member.team_id == team_id, Member.identity == identity)
        return (await self.session.exec(query)).first()

    async def members(self, team_id: int) -> list[Member]:
        query = select(Member).where(Member.team_id == team_id).order_by(col(Member.id))
        return list((await self.session.exec(query)).all())

    async def add_member(self, team_id: int, identity: str, role: str) -> Member:
        member = Member(team_id=team_id, identity=identity, role=role)
        self.session.add(member)
        await self.session.flush()
        return member

    async def create_api_key(self, team_id: int, name: str, role: str) -> tuple[str, ApiKey]:
        """A new key; the plain text is returned once and never stored."""
        plain = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            team_id=team_id, name=name, role=role, key_hash=hash_key(plain), prefix=plain[:10]
        )
        self.session.add(row)
        await self.session.flush()
        return plain, row

    async def api_keys(self, team_id: int, *, name: str | None = None) -> list[ApiKey]:
        """The team's keys (those named `name` when given), oldest first."""
        query = select(ApiKey).where(ApiKey.team_id == team_id)
        if name is not None:
            query = query.where(ApiKey.name == name)
        return list((await self.session.exec(query.order_by(col(ApiKey.id)))).all())

    async def api_key(self, team_id: int, key_id: int) -> ApiKey | None:
        key = await self.session.get(ApiKey, key_id)
        return key if key is not None and key.team_id == team_id else None

    async def delete(self, row: ApiKey | Member) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def find_api_key(self, plain: str) -> ApiKey | None:
        query = select(ApiKey).where(ApiKey.key_hash == hash_key(plain))
        return (await self.session.exec(query)).first()
