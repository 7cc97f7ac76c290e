"""Recent conversations and their last turns, kept write-through in memory.

A turn then needs no database read: only its one write. This is correct while one process is
the only writer of a conversation, which the per-conversation lock guarantees in one process.
With several workers another one may have stored a turn since this one cached the conversation,
and no notification can arrive before the next turn reads it: there the cache is given a
`latest` read (the active conversation's id and its newest message's id, on the connection that
holds the conversation's lock), and a state whose own differ is brought up to date: with only
the messages stored since, when the same conversation went on elsewhere (as every other turn of
a chat does when a load balancer takes turns between two workers), read on that same
connection, as is a history not cached at all. Where the lock holder's first read
(`storage.held`) took both along (`peek`), the load reads nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.cluster.invalidation import ConversationForgotten, Invalidations, LocalInvalidations
from runtime.llm import ChatMessage
from storage import conversations as conv_store
from storage.database import Database

logger = logging.getLogger(__name__)

Key = tuple[str, str]  # (deployment id, conversation key)
# What is stored at a key now: the active conversation's id and its newest message's id (None:
# it could not be asked; the state is read again).
Latest = Callable[[Key], Awaitable[tuple[int | None, int | None] | None]]
# Rows of a statement in PostgreSQL's SQL, run on the connection that holds the conversation's
# lock (`key`, query, its parameters); raises when that connection is lost.
Fetch = Callable[..., Awaitable[list[tuple[Any, ...]]]]
NEW_KEYS = 10_000  # conversations announced new and not loaded yet that are remembered


@dataclass(frozen=True, slots=True)
class Peek:
    """What the new holder of a conversation's lock read of it, for the next load: what
    `latest` would say, and the history messages after `after` (conversation, message: what
    `cached_end` gave), oldest first."""

    id: int | None
    last: int | None
    after: tuple[int, int]
    since: list[tuple[str, str]]


@dataclass(slots=True)
class ConversationState:
    id: int | None  # None: the conversation has no stored turn yet
    window: int  # how many turns `messages` may hold
    messages: deque[ChatMessage]
    last: int | None = None  # its newest stored message's id, where the cache checks it

    def history(self, turns: int) -> list[ChatMessage]:
        if turns <= 0:
            return []
        return list(self.messages)[-2 * turns :]


class ConversationCache:
    def __init__(
        self,
        db: Database,
        *,
        size: int = 5_000,
        invalidations: Invalidations | None = None,
        latest: Latest | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.db = db
        self.size = size
        self.invalidations = invalidations or LocalInvalidations()
        self.latest = latest  # None: this process is the only writer (no check)
        self.fetch = fetch  # None: histories are read through the pool
        self._states: OrderedDict[Key, ConversationState] = OrderedDict()
        self._new: OrderedDict[Key, None] = OrderedDict()
        self._peeked: dict[Key, Peek] = {}

    def begin(self, key: Key) -> None:
        """`key` names a conversation that cannot exist yet (a web session issued just now): its
        first load needs no database read. Ignored when nothing is cached or others write too:
        its first message may be stored by another worker."""
        if self.size <= 0 or self.latest is not None:
            return
        self._new[key] = None
        while len(self._new) > NEW_KEYS:
            self._new.popitem(last=False)

    def cached_end(self, key: Key) -> tuple[int, int, int]:
        """Where the cached history of `key` ends, for the lock holder's first read to take
        the messages after it along: its conversation, its newest message and how many
        messages it keeps (zeros: nothing cached)."""
        state = self._states.get(key)
        if state is None or state.id is None or state.last is None:
            return 0, 0, 0
        return state.id, state.last, 2 * state.window

    def peek(self, key: Key, peek: Peek) -> None:
        """What the holder of the conversation's lock read of it just now, for its next load
        (instead of `latest`), until `unpeek`."""
        self._peeked[key] = peek

    def unpeek(self, key: Key) -> None:
        """The peek at `key` is stale (a turn stored what it does not cache, such as a
        handoff's relay) or no longer needed."""
        self._peeked.pop(key, None)

    async def load(self, key: Key, window: int) -> ConversationState:
        """The conversation at `key` with at least its last `window` turns (the caller holds
        the conversation's lock)."""
        state = self._states.get(key)
        known: tuple[int | None, int | None] | None = None
        if self.latest is not None:
            peeked = self._peeked.pop(key, None)
            known = await self.latest(key) if peeked is None else (peeked.id, peeked.last)
            if state is not None and (known is None or (state.id, state.last) != known):
                # another worker answered it, or it ended, meanwhile
                state = await self._caught_up(key, state, known, window, peeked)
        if state is not None and state.window >= window:
            self._states.move_to_end(key)
            return state
        if known is not None:
            unstored = known[0] is None
        else:  # begun just now, where this process is the only writer
            unstored = self.latest is None and key in self._new
        if unstored:
            self._new.pop(key, None)
            state = ConversationState(id=None, window=window, messages=deque(maxlen=2 * window))
            self._keep(key, state)
            return state
        conversation_id = None if known is None else known[0]
        rows = None if known is None else await self._recent(key, known, 0, window)
        if rows is None:
            async with self.db.read_conn() as conn:
                if known is None:
                    conversation_id = await conv_store.active_conversation(conn, *key)
                rows = []
                if conversation_id is not None and window > 0:
                    rows = await conv_store.history(conn, conversation_id, window)
        state = ConversationState(
            id=conversation_id,
            window=window,
            messages=deque((ChatMessage(r, t) for r, t in rows), maxlen=2 * window),
            last=None if known is None else known[1],
        )
        self._keep(key, state)
        return state

    async def _caught_up(
        self,
        key: Key,
        state: ConversationState,
        known: tuple[int | None, int | None] | None,
        window: int,
        peeked: Peek | None,
    ) -> ConversationState | None:
        """`state` with the messages stored since it was cached, when the same conversation
        only went on (another worker answered it): as `peeked` along, or read now; None: it
        must be read again whole."""
        if (
            known is None
            or known[0] != state.id
            or state.last is None
            or known[1] is None
            or known[1] < state.last
            or state.window < window
        ):
            return None
        if peeked is not None and peeked.after == (state.id, state.last):
            rows: list[tuple[str, str]] | None = peeked.since
        else:
            rows = await self._recent(key, known, state.last, state.window)
        if rows is None:
            return None
        state.messages.extend(ChatMessage(role, text) for role, text in rows)
        state.last = known[1]
        return state

    async def _recent(
        self, key: Key, known: tuple[int | None, int | None], after: int, window: int
    ) -> list[tuple[str, str]] | None:
        """The history messages of the conversation `known` names after the message `after`
        up to its newest, at most the last `window` turns, oldest first, read on the lock's
        connection; None when there is none to read it on (it is lost: the pool then)."""
        conversation_id, last = known
        if self.fetch is None or conversation_id is None:
            return None
        if last is None or window <= 0:
            return []
        try:
            asked = (conversation_id, after, last, 2 * window)
            rows = await self.fetch(key, conv_store.RECENT, *asked)
        except Exception:
            logger.warning("could not read a conversation's new messages", exc_info=True)
            return None
        return conv_store.oldest_first(rows)

    def record(
        self, key: Key, state: ConversationState, turn: list[ChatMessage], *, last: int | None
    ) -> None:
        """After the turn is committed: remember it (error turns are not history); `last` is
        the id of the newest message it stored."""
        state.messages.extend(turn)
        state.last = last
        self._keep(key, state)

    def forget(self, key: Key) -> None:
        """The conversation's stored history changed outside a turn: read it again, here and
        in the other workers."""
        self.drop(key)
        if self.size > 0:
            self.invalidations.publish(ConversationForgotten(*key))

    def drop(self, key: Key) -> None:
        """`forget` in this process only (another worker told of it)."""
        self._states.pop(key, None)

    def clear(self) -> None:
        """Drop everything (changes may have been missed)."""
        self._states.clear()
        self._new.clear()

    def _keep(self, key: Key, state: ConversationState) -> None:
        if self.size <= 0:
            return
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.size:
            self._states.popitem(last=False)
