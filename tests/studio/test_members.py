"""Membership rules below the Studio: the first member owns a team, and a team keeps an owner."""

from __future__ import annotations

import pytest

from storage.database import Database
from storage.teams import TeamRepository
from studio.errors import ConflictError
from studio.members import Members
from studio.roles import Role


async def test_the_first_member_owns_the_team_and_it_keeps_one(db: Database) -> None:
    async with db.write() as session:
        team = await TeamRepository(session).create("workspace")
    assert team.id is not None
    members = Members(db)
    first = (await members.visit(team.id, "slack:U1")).caller
    second = (await members.visit(team.id, "slack:U2")).caller
    assert (first.role, second.role) == (Role.OWNER, Role.VIEWER)
    assert (await members.visit(team.id, "slack:U1")).current_bot is None

    with pytest.raises(ConflictError, match="only owner"):
        await members.set_role(first, "slack:U1", "viewer")
    await members.set_role(first, "U2", "owner")  # the part after ':' names a member too
    assert await members.set_role(first, "slack:U1", "admin") == (
        "slack:U1",
        Role.OWNER,
        Role.ADMIN,
    )
