"""The Studio's pull channel (`studio`): what the Studio says later (a test report) to a member
on the terminal, the web console or the HTTP endpoint is stored in `studio_notice`, and the front
fetches it (`GET /api/v1/studio/messages?after=N`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import Connection, delete, func, insert
from sqlmodel import col, select

from runtime.channel import Capabilities, DeploymentInfo, SendReceipt
from runtime.messages import OutgoingMessage
from storage.database import Database
from storage.tables import StudioNotice, utcnow
from studio.address import PULL_CHANNEL, team_of

_notice = StudioNotice.__table__  # type: ignore[attr-defined]


class Mailbox:
    """The `studio` channel: sending stores the message for its member to fetch."""

    kind: ClassVar[str] = PULL_CHANNEL
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, files=True)

    def __init__(self, db: Database) -> None:
        self.db = db

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        payload = message.model_dump(mode="json")
        team_id = team_of(message.address)

        def store(conn: Connection) -> int:
            result = conn.execute(
                insert(_notice).values(
                    team_id=team_id,
                    identity=message.address.user,
                    payload=payload,
                    created_at=utcnow(),
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

        return SendReceipt(platform_id=str(await self.db.run_write(store)))

    async def fetch(
        self, team_id: int, identity: str, *, after: int = 0, limit: int = 50
    ) -> list[tuple[int, OutgoingMessage]]:
        """The member's stored messages with an id above `after`, oldest first."""
        query = (
            select(StudioNotice.id, StudioNotice.payload)
            .where(
                StudioNotice.team_id == team_id,
                StudioNotice.identity == identity,
                col(StudioNotice.id) > after,
            )
            .order_by(col(StudioNotice.id))
            .limit(limit)
        )
        async with self.db.read() as session:
            rows: list[tuple[Any, Any]] = list((await session.exec(query)).all())
        return [(int(i), OutgoingMessage.model_validate(p)) for i, p in rows]

    async def latest_id(self, team_id: int, identity: str) -> int:
        query = select(func.max(StudioNotice.id)).where(
            StudioNotice.team_id == team_id, StudioNotice.identity == identity
        )
        async with self.db.read() as session:
            return int((await session.exec(query)).one() or 0)

    @staticmethod
    def expire(conn: Connection, *, before: datetime) -> None:
        """Forget stored messages older than `before` (housekeeping: fronts fetch within
        seconds)."""
        conn.execute(delete(_notice).where(_notice.c.created_at < before))

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None
