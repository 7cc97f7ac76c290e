"""What a worker reads as it takes a conversation's lock, when workers share the database: one
statement in PostgreSQL's own SQL, run on the connection that holds the lock
(`runtime.locks.SharedConversationLocks.fetch`), so that a turn pays one round trip for it.

- the conversation's messages not answered yet, up to the one being answered (whichever worker
  accepted them), oldest first; the row itself whatever its conversation (one recorded before
  rows named theirs);
- the active conversation and its newest message's id (`storage.conversations.LATEST`: is a
  cached history still current?);
- the conversation's open handoff (a person of the team may have it since a moment ago);
- the history messages stored after the one a cached history ends with (another worker went on
  with the conversation), the newest ones, up to as many as the cache keeps (the same snapshot:
  none newer than that newest message).

Parameters: `$1` deployment id, `$2` conversation key, `$3` the inbox row being answered, `$4`
the cached conversation, `$5` the message its history ends with, `$6` how many messages it keeps
(zeros: nothing cached, nothing read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.conversations import LATEST, oldest_first
from storage.tables import HandoffRecord, InboxItem, Message

_inbox = InboxItem.__table__.name  # type: ignore[attr-defined]
_handoff = HandoffRecord.__table__.name  # type: ignore[attr-defined]
_message = Message.__table__.name  # type: ignore[attr-defined]

_PENDING, _LATEST, _HANDOFF, _SINCE = 1, 2, 3, 4

HELD = (
    f"(SELECT {_PENDING} AS part, id::bigint AS a, NULL::bigint AS b, NULL::text AS role,"
    f" NULL::text AS said FROM {_inbox}"
    " WHERE deployment_id = $1 AND status = 'pending'"
    " AND (conversation = $2 AND id <= $3 OR id = $3))"
    f" UNION ALL (SELECT {_LATEST}, latest.*, NULL, NULL FROM ({LATEST}) AS latest)"
    f" UNION ALL (SELECT {_HANDOFF}, h.id, NULL, NULL, NULL FROM {_handoff} h"
    " WHERE h.closed_at IS NULL AND h.deployment_id = $1 AND h.conversation_key = $2"
    " ORDER BY h.id DESC LIMIT 1)"
    f" UNION ALL (SELECT {_SINCE}, m.id, NULL, m.role, m.text FROM {_message} m"
    " WHERE m.conversation_id = $4 AND m.id > $5 AND m.error IS NULL"
    " ORDER BY m.id DESC LIMIT $6)"
)


@dataclass(frozen=True, slots=True)
class Held:
    """`HELD`'s answer."""

    pending: list[int]  # inbox rows to answer, oldest first
    conversation: int | None  # the active conversation (None: none stored yet)
    last: int | None  # its newest message's id
    handoff: int | None  # its open handoff
    since: list[tuple[str, str]]  # history after the cached history's end: role, text

    @classmethod
    def of(cls, rows: Sequence[tuple[Any, ...]]) -> Held:
        pending: list[int] = []
        said: list[tuple[int, str, str]] = []
        conversation = last = handoff = None
        for part, a, b, role, text in rows:
            if part == _PENDING:
                pending.append(int(a))
            elif part == _LATEST:
                conversation, last = int(a), None if b is None else int(b)
            elif part == _HANDOFF:
                handoff = int(a)
            else:
                said.append((int(a), role, text))
        pending.sort()
        said.sort(reverse=True)  # newest first, as `oldest_first` takes them
        since = oldest_first([(role, text) for _, role, text in said])
        return cls(pending, conversation, last, handoff, since)
