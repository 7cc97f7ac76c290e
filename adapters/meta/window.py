"""The messaging window of Meta's platforms: a business may write freely to a person for 24 hours
after that person's last message (WhatsApp's customer-service window, Messenger's standard
messaging window); after that, only what the platform allows (an approved template, a tag).

When a person last wrote is known two ways. In memory, from the webhook, with the platform's own
timestamp: exact, and it counts every message (a voice note, a `/start`, a sticker), even those
the runtime keeps no transcript of; it is also what makes a reply cost no database read. From the
database otherwise (after a restart, or a message another process received): the time the end
user's last message was kept or recorded in the inbox, a little after they sent it, hence a
margin. A
window wrongly thought open is still caught: the platform refuses the message, and the channel
falls back as for a closed one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from runtime.messages import Address
from storage.database import Database
from storage.tables import Conversation, InboxItem, Message

WINDOW_S = 24 * 3600.0
# The stored time of a message is when its turn was kept: seconds (a slow model, a queue) after
# the person sent it.
MARGIN_S = 300.0
REMEMBERED = 50_000  # people whose last message is kept in memory (least recently heard go)

_conv = Conversation.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_inbox = InboxItem.__table__  # type: ignore[attr-defined]


class Window:
    """Whether a deployment may still write freely to a person. `clock` gives epoch seconds
    (tests move it with the fake platform's)."""

    def __init__(
        self,
        db: Database,
        *,
        length_s: float = WINDOW_S,
        clock: Callable[[], float] = time.time,
        remembered: int = REMEMBERED,
    ) -> None:
        self.db = db
        self.length_s = length_s
        self.clock = clock
        self._remembered = remembered
        self._heard: OrderedDict[tuple[str, str], float] = OrderedDict()

    def heard(self, address: Address, at: float) -> None:
        """The person at `address` wrote at `at` (epoch seconds, the platform's timestamp)."""
        key = (address.deployment_id, address.user)
        self._heard[key] = max(at, self._heard.get(key, at))
        self._heard.move_to_end(key)
        while len(self._heard) > self._remembered:
            self._heard.popitem(last=False)

    async def is_open(self, address: Address) -> bool:
        """Whether the person at `address` wrote to the deployment within the window."""
        now = self.clock()
        heard = self._heard.get((address.deployment_id, address.user))
        if heard is not None and now - heard < self.length_s:
            return True
        kept = await last_message_at(self.db, address)
        return kept is not None and now - kept.timestamp() < self.length_s - MARGIN_S


async def last_message_at(db: Database, address: Address) -> datetime | None:
    """When the end user last wrote to the deployment, as kept: the later of their last message
    in their conversations at `address` (across a `/reset`: a new conversation has the same key)
    and their last message recorded in the inbox (one acknowledged but not answered yet when
    the process stopped, or one no transcript keeps: a voice note the bot could not hear). None
    when neither is kept."""
    said = (
        select(func.max(_msg.c.created_at))
        .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
        .where(
            _conv.c.deployment_id == address.deployment_id,
            _conv.c.key == address.conversation,
            _conv.c.user == address.user,
            _msg.c.role == "user",
        )
    )
    received = select(func.max(_inbox.c.received_at)).where(
        _inbox.c.deployment_id == address.deployment_id,
        _inbox.c.payload["address"]["user"].as_string() == address.user,
    )
    async with db.read_conn() as conn:
        times = [(await conn.execute(query)).scalar_one_or_none() for query in (said, received)]
    kept = [t if t.tzinfo is not None else t.replace(tzinfo=UTC) for t in times if t is not None]
    return max(kept, default=None)  # SQLite keeps no zone: its times are UTC
