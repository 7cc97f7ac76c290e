"""Roles per team and who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from studio.errors import ForbiddenError


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str) -> Role:
        try:
            return cls(value.lower())
        except ValueError:
            allowed = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role '{value}'; roles are {allowed}") from None


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is acting: a member of one team with one role."""

    team_id: int
    team: str
    identity: str
    role: Role
    key_id: int | None = None  # the API key it calls with, when it calls with one

    def require(self, needed: Role, doing: str) -> None:
        if self.role.rank < needed.rank:
            raise ForbiddenError(
                f"{doing} needs the {needed.value} role; you are {_article(self.role)} "
                f"{self.role}. {self._who_can_change(needed)}"
            )

    def _who_can_change(self, needed: Role) -> str:
        if self.identity.startswith("api:"):  # a key keeps the role it was made with
            return (
                "An API key keeps its role: use a key made with `python main.py apikey create "
                f"--team {self.team} --role {needed.value} --name NAME`."
            )
        who = "An owner" if needed is Role.OWNER else "An owner or admin"
        return f"{who} can change that with `/role {self.identity} {needed.value}`."


def _article(role: Role) -> str:
    return "an" if role.value[0] in "aeiou" else "a"
