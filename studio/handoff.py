"""`/handoff`: where a bot hands conversations to people of the team, shown and edited.

The target is part of the draft (`BotSpec.handoff`), so it is versioned, audited, shown by
`/show` and `/diff`, and reaches end users once promoted. A target is a room on one of the
Studio's fronts (`runtime.team_front`): named (`#support`), or `here`, the room the command is
said in; the front's rooms check it with the platform when it is set (the app is in that Slack
channel; the caller administers that Telegram group). A target set by REST or YAML import is
checked the same way (`HandoffFeature.checked`, the hook `Operations` calls).
"""

from __future__ import annotations

from typing import Any

from builders.spec import Handoff
from runtime.handoff import RESUME, Room, RoomError
from runtime.messages import Address, Field
from runtime.team_front import TeamFronts
from studio.commands import Command, HandoffSet, HandoffShow, Resume
from studio.errors import InvalidError, NotAvailableError
from studio.operations import DraftRef, Operations
from studio.presenters import handoff_summary
from studio.replies import Answer
from studio.roles import Caller, Role

HANDOFF_COMMANDS: tuple[type[Command], ...] = (HandoffShow, HandoffSet, Resume)
_HERE = "here"
RESUME_HERE = (
    f"{RESUME[0]} gives a handed-over conversation back to its bot: in Slack type "
    f"{RESUME[1]} (the whole message) in that conversation's thread; in the Telegram group "
    f"reply {RESUME[0]} to one of its messages."
)


class HandoffFeature:
    """What `/handoff` does, for the engine (which resolves the bot)."""

    def __init__(self, *, ops: Operations, fronts: TeamFronts) -> None:
        self.ops = ops
        self.fronts = fronts
        ops.handoff_check = self.checked  # a target changed by REST or YAML is checked too

    async def run(self, caller: Caller, bot: str, command: Command, where: Address) -> Answer:
        draft = await self.ops.draft(caller, bot)
        if isinstance(command, HandoffShow):
            return _shown(draft)
        assert isinstance(command, HandoffSet)
        return await self._set(caller, draft, command, where)

    async def _set(
        self, caller: Caller, draft: DraftRef, command: HandoffSet, where: Address
    ) -> Answer:
        caller.require(Role.EDITOR, "Setting where a bot hands over")
        current = draft.spec.handoff
        name = draft.name
        if command.off:
            if current is None:
                return Answer(f"Nothing changed: *{name}* hands nothing over already.")
            view = await self.ops.edit_draft(
                caller, name, {"handoff": None}, revision=draft.revision
            )
            return Answer(
                f"*{name}* no longer hands conversations to people (draft revision "
                f"{view.revision}); end users once you promote it."
            )
        data: dict[str, Any]
        if command.target is not None:
            room = await self._room(command.target, where, name, by=caller)
            data = {"channel": room.kind, "target": room.id, "name": room.name}
            if current is not None:
                data |= {"timeout_minutes": current.timeout_minutes, "tool": current.tool}
        elif current is None:
            raise InvalidError(f"Say where first: /handoff {name} to #channel")
        else:
            data = current.model_dump(mode="json")
        if command.timeout_minutes is not None:
            data["timeout_minutes"] = command.timeout_minutes
        if command.by_model is not None:
            data["tool"] = command.by_model
        if current is not None and Handoff.model_validate(data) == current:
            return Answer(f"Nothing changed: *{name}* hands over to {handoff_summary(current)}.")
        view = await self.ops.edit_draft(caller, name, {"handoff": data}, revision=draft.revision)
        handoff = view.draft.handoff
        assert handoff is not None
        rooms = self.fronts.rooms(handoff.channel)
        give_back = rooms.give_back if rooms is not None else f"say {RESUME[0]}"
        text = (
            f"*{name}* hands conversations over to {handoff.name} (draft revision "
            f"{view.revision}). People answer there, under {name}'s name, and {give_back} to "
            f"give it back (or it goes back after {handoff.timeout_minutes} minutes without an "
            "answer)."
        )
        if handoff.tool:
            text += " The model may hand over by itself when it cannot help."
        if not handoff.tool and not _has_step(draft):
            text += (
                f" Nothing hands over yet: add a handoff step (/flow {name} add handoff human) "
                "or let the model do it (tool on)."
            )
        return Answer(f"{text} /try shows it; end users get it once you promote it.")

    async def _room(self, target: str, where: Address, bot: str, *, by: Caller) -> Room:
        """The room `target` names, checked with its platform for `by`."""
        kind, wanted = self._kind(target, where, bot)
        return await self._found(kind, wanted, bot, by=by)

    async def _found(self, kind: str, target: str, bot: str, *, by: Caller) -> Room:
        try:
            return await team_room(self.fronts, kind, target, by=by)
        except NotAvailableError as exc:
            raise NotAvailableError(f"{exc.message}, so nothing can be handed over there") from None
        except InvalidError as exc:
            raise InvalidError(exc.message.replace("/handoff BOT", f"/handoff {bot}")) from None

    async def checked(self, caller: Caller, bot: str, handoff: Handoff) -> None:
        """A target set by REST or YAML import (`Operations.handoff_check`): the same checks as
        `/handoff BOT to ...`, so no way in skips them."""
        front = self.fronts.get(handoff.channel)
        if front is None:
            kinds = " or ".join(other.kind for other in self.fronts.all()) or "none here"
            raise InvalidError(
                f"handoff: channel '{handoff.channel}' has no rooms for the team to answer in "
                f"(channels that do: {kinds})"
            )
        if front.room(handoff.target) != handoff.target:
            raise InvalidError(
                f"handoff: target '{handoff.target}' is no room's id on {front.title} "
                f"({front.room_hint}): /handoff {bot} to ... finds it"
            )
        await self._found(handoff.channel, handoff.target, bot, by=caller)

    def _kind(self, target: str, where: Address, bot: str) -> tuple[str, str]:
        """Which front's room `target` is (`here`: the one the command is said in), and the
        room as that front names it."""
        if target.lower() != _HERE:
            for front in self.fronts.all():
                room = front.room(target)
                if room is not None:
                    return front.kind, room
            raise InvalidError(f"'{target[:60]}' names no room: {_ways(self.fronts, bot)}")
        said_on = self.fronts.of_channel(where.channel)
        spot = said_on.spot(where) if said_on is not None else None
        if said_on is None or spot is None:
            raise InvalidError(f"Say which channel: {_ways(self.fronts, bot)}")
        room = None if spot.direct else said_on.room(spot.id)
        if room is None:
            raise InvalidError(
                f"A DM cannot take handed-over conversations: say /handoff {bot} to here in "
                f"a room of the team that has the Studio, or name one: {said_on.room_hint}"
            )
        return said_on.kind, room


async def team_room(fronts: TeamFronts, kind: str, target: str, *, by: Caller) -> Room:
    """The room `target` of the front `kind`, checked usable by the Studio and by `by`:
    `NotAvailableError` when that front is off here, `InvalidError` with the platform's reason
    (its advice says `/handoff BOT`) when the room will not do."""
    rooms = fronts.rooms(kind)
    if rooms is None:
        raise NotAvailableError(fronts.off_reason(kind))
    try:
        return await rooms.find(target, by=by.identity, team_id=by.team_id)
    except RoomError as exc:
        raise InvalidError(str(exc)) from None


def _ways(fronts: TeamFronts, bot: str) -> str:
    """How a room is named on each front, for a message."""
    named = " or ".join(front.room_hint for front in fronts.all())
    return f"/handoff {bot} to {named or 'a room'}, or /handoff {bot} to here in that room"


def _has_step(draft: DraftRef) -> bool:
    return any(step.kind == "handoff" for step in draft.spec.pipeline)


def _shown(draft: DraftRef) -> Answer:
    handoff = draft.spec.handoff
    if handoff is None:
        return Answer(
            f"*{draft.name}* hands nothing over. /handoff {draft.name} to #channel sets where "
            "people of the team take over a conversation."
        )
    steps = [step.id for step in draft.spec.pipeline if step.kind == "handoff"]
    return Answer(
        text=f"*{draft.name}* handoff (draft revision {draft.revision})",
        fields=(
            Field(label="To", value=handoff.name),
            Field(label="Back to the bot", value=f"after {handoff.timeout_minutes} min unanswered"),
            Field(label="Model may hand over", value="yes" if handoff.tool else "no"),
            Field(label="Handoff steps", value=", ".join(steps) or "none"),
        ),
    )
