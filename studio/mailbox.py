"""The Studio's address scheme and its pull channel.

Every front reaches the Studio as the built-in deployment `studio`. The conversation key starts
with the team id, so the engine knows the team from any address:
`studio_address("studio", 3, "api:owner")` -> conversation `3:api:owner`.

Fronts that cannot be pushed to (the terminal, the web console, `POST /api/v1/studio/messages`)
use the channel `studio`: what the Studio says later (a test report) lands in the
`studio_notice` table, and the front fetches it with `Mailbox.fetch`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Connection, func, insert
from sqlmodel import col, select

from runtime.channel import Capabilities, DeploymentInfo, SendReceipt
from runtime.messages import Address, OutgoingMessage
from storage.database import Database
from storage.tables import StudioNotice, utcnow

STUDIO_DEPLOYMENT = "studio"
PULL_CHANNEL = "studio"
_notice = StudioNotice.__table__  # type: ignore[attr-defined]


def studio_address(
    channel: str, team_id: int, identity: str, *, thread: str | None = None
) -> Address:
    """Where a member talks to the Studio; `thread` separates conversations on one channel."""
    conversation = f"{team_id}:{thread or identity}"
    return Address(
        channel=channel,
        deployment_id=STUDIO_DEPLOYMENT,
        conversation=conversation,
        user=identity,
        thread=thread,
    )


def team_of(address: Address) -> int:
    """The team id a Studio address belongs to (see `studio_address`)."""
    head, _, _ = address.conversation.partition(":")
    return int(head)


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

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return None

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None
