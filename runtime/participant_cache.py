"""Participants' memory, cached like conversations (`conversation_cache`): a turn of a bot that
uses memory reads no row while the person's memory stays as it was.

A turn that writes memory merges what it changed into the stored row and then `forget`s the
person here, as the Studio's memory edits do, so the next turn reads what was stored (two turns
of the same person at once each keep the other's values). A read begun before a `forget` is not
kept. Correct while this process is the only writer, as for the conversation cache: with a
server database the runtime turns it off (`size=0`; see `Runtime`), and a cache that keeps
nothing tells the other workers nothing.
"""

from __future__ import annotations

from collections import OrderedDict

from runtime.cluster.invalidation import (
    Invalidations,
    LocalInvalidations,
    ParticipantsForgotten,
)
from runtime.participant import Scalar
from storage import participants as store
from storage.database import Database

Key = tuple[int, str, str]  # (bot id, channel, user)


class ParticipantCache:
    def __init__(
        self, db: Database, *, size: int = 5_000, invalidations: Invalidations | None = None
    ) -> None:
        self.db = db
        self.size = size
        self.invalidations = invalidations or LocalInvalidations()
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
        """Drop what is cached of a bot's participants (one person, or all), here and in the
        other workers: the next turn reads the stored memory."""
        self.drop(bot_id, user)
        if self.size > 0:
            self.invalidations.publish(ParticipantsForgotten(bot_id, user))

    def clear(self) -> None:
        """Drop everything (changes may have been missed)."""
        self._epoch += 1
        self._values.clear()

    def drop(self, bot_id: int, user: str | None = None) -> None:
        """`forget` in this process only (another worker told of it, or the bot changed)."""
        self._epoch += 1
        for key in [k for k in self._values if k[0] == bot_id and user in (None, k[2])]:
            del self._values[key]
