"""Per-member context kept between messages: the bot a member talked about last is the default
subject of the next command ("set the model to gpt-4o" after creating `faq-bot` edits `faq-bot`).
It is read together with the member (`Members.visit`)."""

from __future__ import annotations

from sqlmodel import col, delete

from storage.database import Database
from storage.tables import StudioContext, utcnow


class ContextStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, team_id: int, identity: str, bot: str | None) -> None:
        async with self.db.write() as session:
            row = await session.get(StudioContext, (team_id, identity))
            if row is None:
                row = StudioContext(team_id=team_id, identity=identity)
            row.bot = bot
            row.updated_at = utcnow()
            session.add(row)

    async def forget_bot(self, team_id: int, bot: str) -> None:
        """A deleted bot is nobody's subject any more."""
        async with self.db.write() as session:
            await session.exec(
                delete(StudioContext).where(
                    col(StudioContext.team_id) == team_id, col(StudioContext.bot) == bot
                )
            )
