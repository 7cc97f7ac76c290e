"""Storage-level outcomes that callers turn into user messages."""

from __future__ import annotations


class StaleRevisionError(Exception):
    """The draft changed since the caller read it."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the draft is at revision {current}")
        self.current = current


class DuplicateError(Exception):
    """A unique name or key is taken."""
