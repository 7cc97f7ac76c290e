"""Bots (with their draft), immutable versions and environment pointers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from builders.spec import BotSpec
from storage.errors import DuplicateError, StaleRevisionError, add_unique
from storage.tables import Bot, BotVersion, EnvironmentPointer, utcnow

ENVIRONMENTS = ("staging", "production")


@dataclass(frozen=True, slots=True)
class PointerView:
    env: str
    version_id: int
    number: int


class BotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, team_id: int, spec: BotSpec) -> Bot:
        bot = Bot(team_id=team_id, name=spec.name, draft=spec.model_dump(mode="json"))
        await add_unique(self.session, bot, f"a bot named '{spec.name}' exists in this team")
        return bot

    async def get(self, team_id: int, name: str) -> Bot | None:
        query = select(Bot).where(Bot.team_id == team_id, Bot.name == name)
        return (await self.session.exec(query)).first()

    async def by_id(self, bot_id: int) -> Bot | None:
        return await self.session.get(Bot, bot_id)

    async def names(self, team_id: int) -> list[str]:
        query = select(Bot.name).where(Bot.team_id == team_id).order_by(Bot.name)
        return list((await self.session.exec(query)).all())

    async def for_team(self, team_id: int) -> list[Bot]:
        query = select(Bot).where(Bot.team_id == team_id).order_by(Bot.name)
        return list((await self.session.exec(query)).all())

    async def save_draft(self, bot: Bot, spec: BotSpec, *, expected_revision: int) -> Bot:
        """Replace the draft if nobody changed it since `expected_revision` (compare-and-set)."""
        draft: dict[str, Any] = spec.model_dump(mode="json")
        result = await self.session.exec(
            update(Bot)
            .where(col(Bot.id) == bot.id, col(Bot.revision) == expected_revision)
            .values(draft=draft, revision=expected_revision + 1, updated_at=utcnow())
        )
        if result.rowcount == 0:
            await self.session.refresh(bot)
            raise StaleRevisionError(bot.revision)
        await self.session.refresh(bot)
        return bot

    async def delete(self, bot: Bot) -> None:
        await self.session.delete(bot)
        await self.session.flush()

    async def add_version(self, bot: Bot, spec: BotSpec, *, created_by: str) -> BotVersion:
        """Freeze `spec` as the next version number; the unique (bot, number) decides races."""
        assert bot.id is not None
        for _ in range(5):
            latest = await self.session.exec(
                select(func.max(BotVersion.number)).where(BotVersion.bot_id == bot.id)
            )
            number = (latest.one() or 0) + 1
            version = BotVersion(
                bot_id=bot.id,
                number=number,
                spec=spec.model_dump(mode="json"),
                spec_hash=spec.content_hash(),
                created_by=created_by,
            )
            try:
                async with self.session.begin_nested():
                    self.session.add(version)
                    await self.session.flush()
            except IntegrityError:
                continue
            return version
        raise DuplicateError("could not allocate a version number; try again")

    async def versions(self, bot_id: int) -> list[BotVersion]:
        query = (
            select(BotVersion).where(BotVersion.bot_id == bot_id).order_by(col(BotVersion.number))
        )
        return list((await self.session.exec(query)).all())

    async def version(self, bot_id: int, number: int) -> BotVersion | None:
        query = select(BotVersion).where(BotVersion.bot_id == bot_id, BotVersion.number == number)
        return (await self.session.exec(query)).first()

    async def latest_version(self, bot_id: int) -> BotVersion | None:
        query = (
            select(BotVersion)
            .where(BotVersion.bot_id == bot_id)
            .order_by(col(BotVersion.number).desc())
            .limit(1)
        )
        return (await self.session.exec(query)).first()

    async def pointers(self, bot_id: int) -> dict[str, PointerView]:
        query = (
            select(EnvironmentPointer.env, EnvironmentPointer.version_id, BotVersion.number)
            .join(BotVersion, col(BotVersion.id) == EnvironmentPointer.version_id)
            .where(EnvironmentPointer.bot_id == bot_id)
        )
        rows = (await self.session.exec(query)).all()
        return {env: PointerView(env, vid, num) for env, vid, num in rows}

    async def set_pointer(self, bot_id: int, env: str, version_id: int) -> None:
        await self.session.exec(
            delete(EnvironmentPointer).where(
                col(EnvironmentPointer.bot_id) == bot_id, col(EnvironmentPointer.env) == env
            )
        )
        self.session.add(EnvironmentPointer(bot_id=bot_id, env=env, version_id=version_id))
        await self.session.flush()
