"""Participants' memory, kept write-through in memory like conversations (`conversation_cache`):
a turn of a bot that uses memory then reads no row, only writes what changed with the turn.

Correct while this process is the only writer, as for the conversation cache; the Studio's
memory edits go through `forget` so the next turn reads them.
"""

from __future__ import annotations

from collections import OrderedDict

from runtime.participant import Scalar
from storage import participants as store
from storage.database import Database

Key = tuple[int, str, str]  # (bot id, channel, user)


class ParticipantCache:
    def __init__(self, db: Database, *, size: int = 5_000) -> None:
        self.db = db
        self.size = size
        self._values: OrderedDict[Key, dict[str, Scalar]] = OrderedDict()

    async def load(self, key: Key) -> dict[str, Scalar]:
        """A copy of the person's memory (the turn may change its copy)."""
        cached = self._values.get(key)
        if cached is None:
            bot_id, channel, user = key
            async with self.db.read_conn() as conn:
                cached = await store.load(conn, bot_id=bot_id, channel=channel, user=user)
            self.keep(key, cached)
        else:
            self._values.move_to_end(key)
        return dict(cached)

    def keep(self, key: Key, values: dict[str, Scalar]) -> None:
        """After a commit: the person's memory as stored now."""
        if self.size <= 0:
            return
        self._values[key] = dict(values)
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def forget(self, bot_id: int, user: str | None = None) -> None:
        """Drop what is cached of a bot's participants (one person, or all): the next turn
        reads the stored memory."""
        for key in [k for k in self._values if k[0] == bot_id and user in (None, k[2])]:
            del self._values[key]
