"""Recent conversations and their last turns, kept write-through in memory.

A turn then needs no database read: only its one write. This is correct while one process is
the only writer of a conversation, which the per-conversation lock guarantees in one process.
With several workers another one may have stored a turn since this one cached the conversation,
and no notification can arrive before the next turn reads it: there the cache is given a
`latest` read (the active conversation's id and its newest message's id, one statement on the
connection that holds the conversation's lock), and a state whose own differ is read again.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.cluster.invalidation import ConversationForgotten, Invalidations, LocalInvalidations
from runtime.llm import ChatMessage
from storage import conversations as conv_store
from storage.database import Database

Key = tuple[str, str]  # (deployment id, conversation key)
# What is stored at a key now: the active conversation's id and its newest message's id (None:
# it could not be asked; the state is read again).
Latest = Callable[[Key], Awaitable[tuple[int | None, int | None] | None]]
NEW_KEYS = 10_000  # conversations announced new and not loaded yet that are remembered


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
    ) -> None:
        self.db = db
        self.size = size
        self.invalidations = invalidations or LocalInvalidations()
        self.latest = latest  # None: this process is the only writer (no check)
        self._states: OrderedDict[Key, ConversationState] = OrderedDict()
        self._new: OrderedDict[Key, None] = OrderedDict()

    def begin(self, key: Key) -> None:
        """`key` names a conversation that cannot exist yet (a web session issued just now): its
        first load needs no database read. Ignored when nothing is cached or others write too:
        its first message may be stored by another worker."""
        if self.size <= 0 or self.latest is not None:
            return
        self._new[key] = None
        while len(self._new) > NEW_KEYS:
            self._new.popitem(last=False)

    async def load(self, key: Key, window: int) -> ConversationState:
        """The conversation at `key` with at least its last `window` turns (the caller holds
        the conversation's lock)."""
        state = self._states.get(key)
        known: tuple[int | None, int | None] | None = None
        if self.latest is not None:
            known = await self.latest(key)
            if state is not None and (known is None or (state.id, state.last) != known):
                state = None  # another worker answered it, or it ended, meanwhile
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
        async with self.db.read_conn() as conn:
            if known is None:
                conversation_id = await conv_store.active_conversation(conn, *key)
            else:
                conversation_id = known[0]
            rows: list[tuple[str, str]] = []
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
