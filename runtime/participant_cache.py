"""Participants' memory, cached like conversations (`conversation_cache`): a turn of a bot that
uses memory reads no row while the person's memory stays as it was.

A turn that writes memory merges what it changed into the stored row and then `forget`s the
person here, as the Studio's memory edits do, so the next turn reads what was stored (two turns
of the same person at once each keep the other's values). A read begun before a `forget` is not
kept. Correct while this process is the only writer, as for the conversation cache.
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
        self._epoch = 0  # grows at each `forget`: a read begun before it is not kept

    async def load(self, key: Key) -> dict[str, Scalar]:
        """A copy of the person's memory (the turn may change its copy)."""
        cached = self._values.get(key)
        if cached is None:
            bot_id, channel, user = key
            epoch = self._epoch
            async with self.db.read_conn() as conn:
                cached = await store.load(conn, bot_id=bot_id, channel=channel, user=user)
            if epoch == self._epoch:  # nothing was forgotten meanwhile: the read is current
                self._keep(key, cached)
        else:
            self._values.move_to_end(key)
        return dict(cached)

    def _keep(self, key: Key, values: dict[str, Scalar]) -> None:
        """The person's memory as read from the database."""
        if self.size <= 0:
            return
        self._values[key] = dict(values)
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def forget(self, bot_id: int, user: str | None = None) -> None:
        """Drop what is cached of a bot's participants (one person, or all): the next turn
        reads the stored memory."""
        self._epoch += 1
        for key in [k for k in self._values if k[0] == bot_id and user in (None, k[2])]:
            del self._values[key]
