"""Pending confirmations, stored (not held in memory) so that they survive a restart and work
across workers. A confirmation belongs to one member, one command and one draft revision; it is
claimed at most once, within `TTL`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Update, delete, update
from sqlmodel import col, select

from storage.database import Database
from storage.tables import Confirmation, utcnow

TTL = timedelta(minutes=5)
# The kind of a pending question is the prefix of its id: "yes" answers a question ("c_"), a
# value handed over privately answers a request for it ("s_"), never the other way round.
QUESTION = "c_"
SECRET_REQUEST = "s_"  # a secret's value (a team's, a deployment's), asked for privately
_confirmation = Confirmation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    command: dict[str, Any]
    bot: str | None


class Confirmations:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ask(
        self,
        *,
        team_id: int,
        identity: str,
        command: dict[str, Any],
        bot: str | None,
        revision: int | None,
        kind: str = QUESTION,
    ) -> str:
        """Store a pending confirmation; its id goes into the buttons. Earlier unanswered ones of
        the same member lapse: "yes" always means the latest question."""
        token = kind + secrets.token_urlsafe(12)
        now = utcnow()
        async with self.db.write() as session:
            await session.exec(_lapse(team_id, identity))
            session.add(
                Confirmation(
                    id=token,
                    team_id=team_id,
                    identity=identity,
                    command=command,
                    bot=bot,
                    revision=revision,
                    expires_at=now + TTL,
                )
            )
        return token

    async def lapse(self, *, team_id: int, identity: str) -> None:
        """The member moved on to another command: an open question no longer stands, so a
        later "yes" cannot confirm something asked minutes and several commands ago. (An
        update that matches nothing, through the one writer, costs less than a read first.)"""
        await self.db.run_write(lambda conn: conn.execute(_lapse(team_id, identity)))

    async def waiting(self, *, team_id: int, identity: str, kind: str) -> Pending | None:
        """The member's latest open request of `kind` (a front asks before it records a
        message that may answer it); None when there is none."""
        query = (
            select(Confirmation)
            .where(
                Confirmation.team_id == team_id,
                Confirmation.identity == identity,
                col(Confirmation.used_at).is_(None),
                col(Confirmation.expires_at) > utcnow(),
                col(Confirmation.id).startswith(kind, autoescape=True),
            )
            .order_by(col(Confirmation.created_at).desc())
            .limit(1)
        )
        async with self.db.read() as session:
            row = (await session.exec(query)).first()
        return Pending(id=row.id, command=row.command, bot=row.bot) if row is not None else None

    async def asked_of_another(self, *, team_id: int, identity: str, token: str) -> bool:
        """Whether `token` is an open question of another member of the team (their button,
        pressed by someone else)."""
        query = select(Confirmation.id).where(
            Confirmation.id == token,
            Confirmation.team_id == team_id,
            Confirmation.identity != identity,
            col(Confirmation.used_at).is_(None),
            col(Confirmation.expires_at) > utcnow(),
        )
        async with self.db.read() as session:
            return (await session.exec(query)).first() is not None

    async def claim(
        self, *, team_id: int, identity: str, token: str | None, kind: str = QUESTION
    ) -> Pending | None:
        """Take the pending confirmation `token` (None: the member's latest of `kind`) if it is
        this member's, unused and unexpired; None otherwise. The update's row count decides, so
        two clicks cannot both win."""
        if token is not None and not token.startswith(kind):
            return None
        now = utcnow()
        async with self.db.write() as session:
            query = select(Confirmation).where(
                Confirmation.team_id == team_id,
                Confirmation.identity == identity,
                col(Confirmation.used_at).is_(None),
                col(Confirmation.expires_at) > now,
                col(Confirmation.id).startswith(kind, autoescape=True),
            )
            if token is not None:
                query = query.where(Confirmation.id == token)
            row = (await session.exec(query.order_by(col(Confirmation.created_at).desc()))).first()
            if row is None:
                return None
            claimed = await session.exec(
                update(Confirmation)
                .where(col(Confirmation.id) == row.id, col(Confirmation.used_at).is_(None))
                .values(used_at=now)
            )
            if claimed.rowcount != 1:
                return None
            return Pending(id=row.id, command=row.command, bot=row.bot)


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget confirmations asked before `before` (housekeeping: they last minutes)."""
    conn.execute(delete(_confirmation).where(_confirmation.c.created_at < before))


def _lapse(team_id: int, identity: str) -> Update:
    return (
        update(Confirmation)
        .where(
            col(Confirmation.team_id) == team_id,
            col(Confirmation.identity) == identity,
            col(Confirmation.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
