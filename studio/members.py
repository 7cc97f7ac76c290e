"""Membership decisions: who a Studio user is in a team, roles, invites and joining.

The first member of a team is its owner; anyone else seen for the first time joins as a viewer.
Every change is audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.audit import AuditRepository
from storage.database import Database
from storage.errors import DuplicateError
from storage.tables import IdentityHome, Invite, Member, StudioContext, Team, utcnow
from storage.teams import TeamRepository
from studio.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from studio.roles import Caller, Role

INVITE_TTL = timedelta(days=7)
_INVITE_PREFIX = "join-"


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Visit:
    caller: Caller
    current_bot: str | None  # the default subject of the member's next command


@dataclass(frozen=True, slots=True)
class Joined:
    team: str
    role: Role
    already: bool  # the identity was a member before


class Members:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def visit(self, team_id: int, identity: str) -> Visit:
        """The member `identity` of the team and the bot they talked about last (one query),
        joining the team if new: as owner when it has no members yet, else as a viewer."""
        query = (
            select(Team.name, Member.role, StudioContext.bot)
            .outerjoin(
                Member, and_(col(Member.team_id) == Team.id, col(Member.identity) == identity)
            )
            .outerjoin(
                StudioContext,
                and_(
                    col(StudioContext.team_id) == Team.id, col(StudioContext.identity) == identity
                ),
            )
            .where(Team.id == team_id)
        )
        async with self.db.read() as session:
            row = (await session.exec(query)).first()
        if row is None:
            raise NotFoundError("this team no longer exists")
        team_name, known_role, current = row
        if known_role is not None:
            caller = Caller(
                team_id=team_id, team=team_name, identity=identity, role=Role(known_role)
            )
            return Visit(caller, current)
        async with self.db.write() as session:
            repo = TeamRepository(session)
            member = await repo.member(team_id, identity)
            if member is None:
                anyone = (
                    await session.exec(select(Member.id).where(Member.team_id == team_id).limit(1))
                ).first()
                role = Role.VIEWER if anyone is not None else Role.OWNER
                member = await repo.add_member(team_id, identity, role)
                await AuditRepository(session).record(
                    team_id=team_id,
                    actor=identity,
                    action="member.join",
                    target=identity,
                    after={"role": role.value},
                )
        caller = Caller(team_id=team_id, team=team_name, identity=identity, role=Role(member.role))
        return Visit(caller, current)

    async def workspace_team(self, name: str, *, owners: list[str], actor: str = "slack") -> int:
        """The team of a chat workspace (a Slack workspace, or one person's own team), created
        on first contact with `owners` (identities) as its owners; without owners, its first
        member will own it."""
        async with self.db.read() as session:
            team = await TeamRepository(session).by_name(name)
        if team is not None and team.id is not None:
            return team.id
        try:
            async with self.db.write() as session:
                repo = TeamRepository(session)
                team = await repo.create(name)
                assert team.id is not None
                for owner in owners:
                    await repo.add_member(team.id, owner, Role.OWNER)
                await AuditRepository(session).record(
                    team_id=team.id,
                    actor=actor,
                    action="team.create",
                    target=name,
                    after={"owners": owners},
                )
                return team.id
        except DuplicateError:  # another delivery created it meanwhile
            async with self.db.read() as session:
                team = await TeamRepository(session).by_name(name)
            assert team is not None and team.id is not None
            return team.id

    async def home_team(self, identity: str) -> int | None:
        """The team an identity without a workspace (Telegram) talks to: the one it joined or
        re-joined last with `/join` (else its latest membership)."""
        home = select(IdentityHome.team_id).where(IdentityHome.identity == identity)
        latest = (
            select(Member.team_id)
            .where(Member.identity == identity)
            .order_by(col(Member.id).desc())
            .limit(1)
        )
        async with self.db.read() as session:
            team_id = (await session.exec(home)).first()
            return team_id if team_id is not None else (await session.exec(latest)).first()

    async def personal_team(self, identity: str, *, name: str) -> int:
        """A team `name` owned by `identity` alone (open sign-up), which it then talks to; an
        existing team of that name is reused only when `identity` is already its member."""
        team_id = await self.workspace_team(name, owners=[identity], actor=identity)
        async with self.db.write() as session:
            if await TeamRepository(session).member(team_id, identity) is None:
                raise ConflictError(f"a team named {name} exists already")
            await _make_home(session, identity, team_id)
        return team_id

    async def leaders(self, team_id: int) -> list[str]:
        """The identities of the team's owners and admins."""
        async with self.db.read() as session:
            members = await TeamRepository(session).members(team_id)
        wanted = {Role.OWNER.value, Role.ADMIN.value}
        return [m.identity for m in members if m.role in wanted]

    async def role_of(self, team_id: int, identity: str) -> Role | None:
        async with self.db.read() as session:
            member = await TeamRepository(session).member(team_id, identity)
        return Role(member.role) if member else None

    async def admit(self, team_id: int, identity: str, role: Role, *, actor: str) -> None:
        """Make `identity` a member with `role` unless it is one already (the command line
        acting for whoever holds the data)."""
        async with self.db.write() as session:
            repo = TeamRepository(session)
            if await repo.member(team_id, identity) is None:
                await repo.add_member(team_id, identity, role)
                await AuditRepository(session).record(
                    team_id=team_id,
                    actor=actor,
                    action="member.join",
                    target=identity,
                    after={"role": role.value},
                )

    async def set_role(self, caller: Caller, user: str, role: str) -> tuple[str, Role, Role]:
        """Give `user` (an identity, or its part after ':' when unique) a role.

        Returns (identity, before, after). Only owners grant or take away ownership, and a team
        always keeps one owner."""
        caller.require(Role.ADMIN, "Changing roles")
        try:
            wanted = Role.parse(role)
        except ValueError as exc:
            raise InvalidError(str(exc)) from None
        async with self.db.write() as session:
            member = await _find_member(session, caller.team_id, user)
            if member.identity.startswith("api:"):
                raise InvalidError(
                    "An API key keeps the role it was made with: create a key with the role you "
                    "want (python main.py apikey create)"
                )
            before = Role(member.role)
            if Role.OWNER in (before, wanted) and caller.role is not Role.OWNER:
                raise ForbiddenError("Only an owner can make or unmake an owner.")
            if before is Role.OWNER and wanted is not Role.OWNER:
                owners = (
                    await session.exec(
                        select(Member.id).where(
                            Member.team_id == caller.team_id, Member.role == Role.OWNER.value
                        )
                    )
                ).all()
                if len(owners) <= 1:
                    raise ConflictError(
                        f"{member.identity} is the team's only owner; make someone else owner first"
                    )
            if before is not wanted:
                member.role = wanted.value
                session.add(member)
                await AuditRepository(session).record(
                    team_id=caller.team_id,
                    actor=caller.identity,
                    action="member.role",
                    target=member.identity,
                    before={"role": before.value},
                    after={"role": wanted.value},
                )
            return member.identity, before, wanted

    async def create_invite(self, caller: Caller) -> str:
        """A one-time code (stored hashed) that lets someone join the team as a viewer."""
        caller.require(Role.ADMIN, "Inviting people")
        code = _INVITE_PREFIX + secrets.token_urlsafe(9)
        async with self.db.write() as session:
            session.add(
                Invite(
                    team_id=caller.team_id,
                    code_hash=_hash(code),
                    role=Role.VIEWER.value,
                    created_by=caller.identity,
                    expires_at=utcnow() + INVITE_TTL,
                )
            )
            await AuditRepository(session).record(
                team_id=caller.team_id, actor=caller.identity, action="invite.create", target="-"
            )
        return code

    async def join(self, identity: str, code: str) -> Joined:
        """Use an invite code: `identity` joins its team. A code works once, within its life."""
        now = utcnow()
        async with self.db.write() as session:
            invite = (
                await session.exec(select(Invite).where(Invite.code_hash == _hash(code)))
            ).first()
            if invite is None or invite.used_at is not None or aware(invite.expires_at) < now:
                raise InvalidError(
                    "That code is not valid (unknown, used or expired); ask an admin for a new "
                    "one with /invite"
                )
            team = await session.get(Team, invite.team_id)
            assert team is not None
            repo = TeamRepository(session)
            member = await repo.member(invite.team_id, identity)
            if member is not None:  # a code of one's own team: talk to that team again
                await _make_home(session, identity, invite.team_id)
                return Joined(team=team.name, role=Role(member.role), already=True)
            claimed = await session.exec(
                update(Invite)
                .where(col(Invite.id) == invite.id, col(Invite.used_at).is_(None))
                .values(used_at=now, used_by=identity)
            )
            if claimed.rowcount != 1:
                raise InvalidError("That code was just used; ask an admin for a new one")
            await repo.add_member(invite.team_id, identity, invite.role)
            await _make_home(session, identity, invite.team_id)
            await AuditRepository(session).record(
                team_id=invite.team_id,
                actor=identity,
                action="member.join",
                target=identity,
                after={"role": invite.role, "via": "invite"},
            )
        return Joined(team=team.name, role=Role(invite.role), already=False)


async def _make_home(session: AsyncSession, identity: str, team_id: int) -> None:
    home = await session.get(IdentityHome, identity)
    if home is None:
        session.add(IdentityHome(identity=identity, team_id=team_id))
    else:
        home.team_id = team_id
        home.updated_at = utcnow()
        session.add(home)


async def _find_member(session: AsyncSession, team_id: int, user: str) -> Member:
    members = await TeamRepository(session).members(team_id)
    exact = [m for m in members if m.identity == user]
    if exact:
        return exact[0]
    by_name = [m for m in members if m.identity.split(":", 1)[-1] == user]
    if len(by_name) == 1:
        return by_name[0]
    known = ", ".join(m.identity for m in members[:10])
    if by_name:
        raise InvalidError(f"'{user}' is ambiguous: say one of {known}")
    raise NotFoundError(f"No member '{user}' in this team. Members: {known}")


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
