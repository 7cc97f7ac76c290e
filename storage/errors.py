"""Storage-level outcomes that callers turn into user messages."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class StaleRevisionError(Exception):
    """The draft changed since the caller read it."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the draft is at revision {current}")
        self.current = current


class DuplicateError(Exception):
    """A unique name or key is taken."""


async def add_unique(session: AsyncSession, row: SQLModel, clash: str) -> None:
    """Insert `row`; a unique-constraint clash raises `DuplicateError(clash)` and rolls back
    only a savepoint, so the caller's transaction stays usable."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise DuplicateError(clash) from None
