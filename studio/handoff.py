"""`/handoff`: where a bot hands conversations to people of the team, shown and edited.

The target is part of the draft (`BotSpec.handoff`), so it is versioned, audited, shown by
`/show` and `/diff`, and reaches end users once promoted. A target is checked when it is set:
a Slack channel the app is in (`#support`, or the channel id Slack gives for a picked one), or
the Telegram group the command is said in (`here`, or its chat id), which has the Studio's
Telegram bot and whose administrator the caller is. A target set by REST or YAML import is
checked the same way (`HandoffFeature.checked`, the hook `Operations` calls).
"""

from __future__ import annotations

from typing import Any

from builders.spec import TELEGRAM_ROOM, Handoff
from runtime.handoff import FRONTS, RESUME, Room, RoomError
from runtime.handoff_desk import HandoffDesk
from runtime.messages import Address, Field
from studio.address import SLACK, TELEGRAM_STUDIO
from studio.commands import Command, HandoffSet, HandoffShow, Resume
from studio.errors import InvalidError, NotAvailableError
from studio.operations import DraftRef, Operations
from studio.presenters import handoff_summary
from studio.replies import Answer
from studio.roles import Caller, Role

HANDOFF_COMMANDS: tuple[type[Command], ...] = (HandoffShow, HandoffSet, Resume)
_HERE = "here"
_SETTINGS = {
    "slack": "SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET",
    "telegram": "TELEGRAM_BUILDER_TOKEN",
}
RESUME_HERE = (
    f"{RESUME[0]} gives a handed-over conversation back to its bot: in Slack type "
    f"{RESUME[1]} (the whole message) in that conversation's thread; in the Telegram group "
    f"reply {RESUME[0]} to one of its messages."
)


class HandoffFeature:
    """What `/handoff` does, for the engine (which resolves the bot)."""

    def __init__(self, *, ops: Operations, desk: HandoffDesk) -> None:
        self.ops = ops
        self.desk = desk
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
        rooms = self.desk.rooms(handoff.channel)
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
        rooms = self.desk.rooms(kind)
        if rooms is None:
            raise NotAvailableError(
                f"{FRONTS[kind]} is not configured here (set {_SETTINGS[kind]} and restart), so "
                "nothing can be handed over there"
            )
        try:
            return await rooms.find(target, by=by.identity, team_id=by.team_id)
        except RoomError as exc:
            raise InvalidError(str(exc).replace("/handoff BOT", f"/handoff {bot}")) from None

    async def checked(self, caller: Caller, bot: str, handoff: Handoff) -> None:
        """A target set by REST or YAML import (`Operations.handoff_check`): the same checks as
        `/handoff BOT to ...`, so no way in skips them."""
        await self._found(handoff.channel, handoff.target, bot, by=caller)

    def _kind(self, target: str, where: Address, bot: str) -> tuple[str, str]:
        """Which platform `target` is on, and the room as that platform names it."""
        if target.lower() != _HERE:
            return ("telegram" if TELEGRAM_ROOM.fullmatch(target) else "slack"), target
        if where.channel == TELEGRAM_STUDIO:
            chat = where.thread or ""
            if not TELEGRAM_ROOM.fullmatch(chat):
                raise InvalidError(
                    "A DM cannot take handed-over conversations: add the Studio's bot to the "
                    f"team's Telegram group and say /handoff {bot} to here there"
                )
            return "telegram", chat
        if where.channel == SLACK:
            channel = (where.thread or "").partition(":")[0]
            if not channel or channel.startswith("D"):
                raise InvalidError(
                    f"A DM cannot take handed-over conversations: /handoff {bot} to #channel"
                )
            return "slack", channel
        raise InvalidError(
            f"Say which channel: /handoff {bot} to #support (Slack), or /handoff {bot} to here "
            "in a Telegram group that has the Studio's bot"
        )


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
