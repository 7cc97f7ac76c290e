"""Handing a conversation to people of the team: what a turn calls, and the ports it uses.

`start_handoff` is what the `handoff` step and the model's own `handoff` function (offered by
`handoff_definition` when the spec's `handoff.tool` is on) both call. Live, it asks the turn's
`Handover` (bound by the runtime to the end user's conversation, `runtime.handoff_desk`) to
post in the team's room; in `/try` and tests nobody is asked: the turn only records where it
would have gone (`TurnContext.handed_over`). The rooms themselves are the adapters' (`TeamRooms`:
a Slack channel's threads, a Telegram group's replies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from builders.spec import HANDOFF_FUNCTION
from runtime.pipeline import NodeResult

if TYPE_CHECKING:
    from builders.spec import BotSpec
    from runtime.pipeline import TurnContext

DEFAULT_MESSAGE = "I've asked a person from the team to help; they'll answer here."
# A whole message in a handoff's room that gives the conversation back to the bot (Slack takes
# no unregistered `/` command, so there it is `resume`); anything longer is an answer.
RESUME = ("/resume", "resume")


class RoomError(Exception):
    """A target the Studio cannot use as a handoff room; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Room:
    """A place where the team answers handed-over conversations: `id` as the platform knows it
    (a Slack channel id, a Telegram chat id), `name` as people know it (#support)."""

    kind: str
    id: str
    name: str


class TeamRooms(Protocol):
    """One platform's rooms (an adapter implements it; its `runtime.team_front.TeamFront` reads
    what people type). `threads`: replies stay in the thread of the first post (Slack);
    otherwise each of the handoff's posts can be replied to (Telegram). `hint` tells people in
    the room how to answer, `give_back` how to end the handoff."""

    kind: ClassVar[str]
    threads: ClassVar[bool]
    hint: ClassVar[str]
    give_back: ClassVar[str]

    async def find(self, target: str, *, by: str, team_id: int) -> Room:
        """The room `target` names (an id, or `#name` on Slack), checked usable by the Studio
        and by `by` of team `team_id` (the member who sets it: a Telegram group takes only what
        its administrators set; a Slack channel, only its workspace's team); `RoomError`
        otherwise."""
        ...

    async def post(self, room: str, text: str, *, thread: str | None = None) -> str:
        """Post plain `text` (the room escapes it) in `room`, in `thread` (the first post's id)
        when given; the new message's id. Raises `runtime.channel.SendError`."""
        ...


class Handover(Protocol):
    """A live turn's way to hand its conversation over (`TurnContext.handover`)."""

    @property
    def is_open(self) -> bool:
        """A person of the team has this conversation now (a dictionary lookup)."""
        ...

    async def relay(self, ctx: TurnContext) -> None:
        """Pass the end user's message (as the turn reads it) to the team's room."""
        ...

    async def open(self, ctx: TurnContext, *, reason: str, message: str) -> NodeResult:
        """Post in the team's room and hand the conversation over; `message` for the end user,
        or the bot's fallback and the error when the room cannot be reached."""
        ...


async def start_handoff(ctx: TurnContext, *, reason: str, message: str | None = None) -> NodeResult:
    """Hand the turn's conversation to the team (the `handoff` step, the model's `handoff`
    function). The end user is told `message` (default: `DEFAULT_MESSAGE`); the turn ends."""
    said = message or DEFAULT_MESSAGE
    target = ctx.spec.handoff
    if target is None:
        return NodeResult(
            reply=ctx.spec.fallback,
            error=f"handoff: {ctx.spec.name} has no handoff target (/handoff BOT to #channel)",
        )
    if ctx.mode != "live":  # /try and tests: nobody is asked
        ctx.handed_over = target.name
        return NodeResult(reply=said)
    if ctx.handover is None:
        return NodeResult(
            reply=ctx.spec.fallback,
            error=f"handoff: {_no_people(ctx)} cannot be handed to people",
        )
    return await ctx.handover.open(ctx, reason=reason, message=said)


def _no_people(ctx: TurnContext) -> str:
    """Which live turn has no way to the team: the runtime gives one to end users' messages."""
    if ctx.depth:
        return "a bot asked by another bot"
    if ctx.channel == "api":
        return "a conversation over the OpenAI-compatible API"
    return "a message the bot sends unasked (a schedule, follow-up or trigger)"


def handoff_definition(spec: BotSpec) -> dict[str, Any] | None:
    """The OpenAI tool definition of the model's own `handoff` function; None unless the spec
    has a handoff target with `tool` on."""
    if spec.handoff is None or not spec.handoff.tool:
        return None
    return {
        "type": "function",
        "function": {
            "name": HANDOFF_FUNCTION,
            "description": (
                "Hand this conversation to a person of the team, who answers the user here. "
                "Use it when the user asks for a human, or when you cannot help them. The user "
                "is told a person is coming; do not answer further yourself."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {
                        "type": "string",
                        "description": "Why, in one sentence, for the team.",
                    }
                },
                "required": ["reason"],
            },
        },
    }
