"""The Studio's fronts: the platforms where a team talks to the Studio itself (its Slack app,
its own Telegram bot), as ports the Studio asks instead of naming a platform.

A front has two sides. `TeamFront` is what the Studio reads from what people type and where
they type it (a room named `#support`, the group a command is said in, a member's DM, how a
secret is asked privately): pure functions of text and addresses, declared by the channel
plugin (`ChannelPlugin.front`) and known even when the platform is off, so the Studio can say
which settings would turn it on. `TeamRooms` (`runtime.handoff`) is the side that talks to the
platform (find a room, post in it), built only when the platform is on. `TeamFronts` keeps
both, in the order the channels are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol

if TYPE_CHECKING:
    from runtime.handoff import Room, TeamRooms
    from runtime.messages import Address

# How a front takes a secret privately: the member's next message in a direct chat (the front
# deletes it and hands it over sealed), or a private form behind a button.
PrivateWay = Literal["message", "form"]


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a message to the Studio was said: a chat or channel (`id`, as the platform names
    it), and whether it is the member's direct chat with the Studio."""

    id: str
    direct: bool


class TeamFront(Protocol):
    """How a team talks to the Studio on one platform (see the module's docstring)."""

    kind: ClassVar[str]  # the platform's channel kind: a handoff's rooms, a schedule's places
    channel: ClassVar[str]  # the Studio's own channel there, as its addresses say
    title: ClassVar[str]  # how people call it ("Slack", "the Studio's Telegram bot")
    private: ClassVar[PrivateWay | None]
    room_hint: ClassVar[str]  # how a room is named there, for messages ("#channel")

    def room(self, said: str) -> str | None:
        """A room of the team as typed (`#support`, `C0123`, `-1001…`), in the form
        `TeamRooms.find` takes; None when `said` names none of this platform's."""
        ...

    def chat(self, said: str) -> Room | None:
        """A chat that a bot deployed to this platform may write to unasked, named by its id
        (a Telegram chat), and its name; None when `said` is no such id. It needs no room
        check: the scheduler checks that a deployment reaches it."""
        ...

    def spot(self, address: Address) -> Spot | None:
        """Where a message to the Studio on this front was said; None when it cannot say."""
        ...

    def report_thread(self, room: str) -> str:
        """The thread of a Studio address whose messages are posted in `room`."""
        ...

    def dm(self, identity: str) -> str | None:
        """The thread of member `identity`'s direct chat with the Studio here; None when the
        identity is not one of this platform's."""
        ...


@dataclass(frozen=True, slots=True)
class _Entry:
    front: TeamFront
    rooms: TeamRooms | None
    missing: tuple[str, ...]


class TeamFronts:
    """The fronts this service has, on (with their rooms) or off (with the settings that
    would turn them on), in the order the channels are listed."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add(self, front: TeamFront, *, rooms: TeamRooms | None) -> None:
        """`front` is on; `rooms` takes handoffs there (None: it has no rooms)."""
        self._entries[front.kind] = _Entry(front, rooms, ())

    def add_off(self, front: TeamFront, *, missing: tuple[str, ...]) -> None:
        """`front` is off here until the settings `missing` are set."""
        self._entries[front.kind] = _Entry(front, None, missing)

    def all(self) -> tuple[TeamFront, ...]:
        """Every front, on or off."""
        return tuple(entry.front for entry in self._entries.values())

    def on(self) -> tuple[TeamFront, ...]:
        return tuple(e.front for e in self._entries.values() if not e.missing)

    def of_channel(self, channel: str) -> TeamFront | None:
        """The front whose Studio channel is `channel` (an address's)."""
        return next((front for front in self.all() if front.channel == channel), None)

    def get(self, kind: str) -> TeamFront | None:
        entry = self._entries.get(kind)
        return entry.front if entry is not None else None

    def rooms(self, kind: str) -> TeamRooms | None:
        """The rooms of the front `kind`; None when it is off or has none (`off_reason`)."""
        entry = self._entries.get(kind)
        return entry.rooms if entry is not None else None

    def off_reason(self, kind: str) -> str:
        """Why the front `kind` has no rooms here, in one clause."""
        entry = self._entries.get(kind)
        if entry is None:
            return f"{kind} is no platform this service has"
        if entry.missing:
            needed = " and ".join(entry.missing)
            return f"{entry.front.title} is not configured here (set {needed} and restart)"
        return f"{entry.front.title} has no rooms for the team"
