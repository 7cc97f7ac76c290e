"""Deployments: a bot environment bound to a channel under an opaque id."""

from __future__ import annotations

import secrets

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import add_unique
from storage.tables import Bot, BotVersion, Deployment, EnvironmentPointer


def new_deployment_id() -> str:
    return "d_" + secrets.token_urlsafe(12)


class DeploymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        *,
        team_id: int,
        bot_id: int,
        channel: str,
        env: str,
        target: str,
        credentials: bytes | None = None,
        public_ident: str | None = None,
    ) -> Deployment:
        deployment = Deployment(
            id=new_deployment_id(),
            team_id=team_id,
            bot_id=bot_id,
            channel=channel,
            env=env,
            target=target,
            credentials=credentials,
            public_ident=public_ident,
        )
        await add_unique(
            self.session, deployment, f"{channel} {target} already has a {env} deployment"
        )
        return deployment

    async def get(self, deployment_id: str) -> Deployment | None:
        return await self.session.get(Deployment, deployment_id)

    async def for_team(
        self, team_id: int, bot_id: int | None = None
    ) -> list[tuple[Deployment, str]]:
        """The team's deployments with their bot's name, oldest first."""
        query = (
            select(Deployment, Bot.name)
            .join(Bot, col(Bot.id) == Deployment.bot_id)
            .where(Deployment.team_id == team_id)
            .order_by(col(Deployment.created_at))
        )
        if bot_id is not None:
            query = query.where(Deployment.bot_id == bot_id)
        return [(d, name) for d, name in (await self.session.exec(query)).all()]

    async def find(self, *, channel: str, target: str, env: str) -> Deployment | None:
        query = select(Deployment).where(
            Deployment.channel == channel, Deployment.target == target, Deployment.env == env
        )
        return (await self.session.exec(query)).first()

    async def find_any(self, *, channel: str, target: str) -> Deployment | None:
        """A deployment at `target` on `channel` in any environment."""
        query = select(Deployment).where(Deployment.channel == channel, Deployment.target == target)
        return (await self.session.exec(query)).first()

    async def live_sample(self, *, limit: int) -> list[tuple[str, str | None]]:
        """(channel, model) of up to `limit` deployments whose environment runs a version: what
        the first answers after a start will need."""
        query = (
            select(Deployment.channel, BotVersion.spec)
            .join(
                EnvironmentPointer,
                (col(EnvironmentPointer.bot_id) == Deployment.bot_id)
                & (col(EnvironmentPointer.env) == Deployment.env),
            )
            .join(BotVersion, col(BotVersion.id) == EnvironmentPointer.version_id)
            .where(Deployment.status == "active")
            .limit(limit)
        )
        rows = (await self.session.exec(query)).all()
        return [(channel, spec.get("model")) for channel, spec in rows]

    async def delete(self, deployment: Deployment) -> None:
        await self.session.delete(deployment)
        await self.session.flush()
