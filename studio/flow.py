"""Flows by conversation: `/flow` shows a draft's steps (a picture and text) and edits them,
`/route` sends some messages to a step or to another bot of the team.

Each edit is a typed change of the draft's pipeline (`builders.flow`) saved through
`Operations.edit_draft`: the editor role, the revision check, the spec's compilation and the
audit event all come from there, so an edit is refused whole or stored whole.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import JsonValue

from builders import flow
from builders.flow import FlowEdit, FlowError, outline, outline_text
from builders.spec import BotSpec
from runtime.messages import Attachment
from studio.commands import (
    Command,
    FlowAdd,
    FlowAsk,
    FlowLink,
    FlowRemove,
    FlowSet,
    FlowShow,
    Route,
)
from studio.errors import InvalidError
from studio.flow_picture import flow_picture
from studio.operations import Operations
from studio.replies import Answer
from studio.roles import Caller, Role

if TYPE_CHECKING:
    from studio.engine import Turn

# An edit: the draft's spec and the team's bot names in, the edited spec out (or `FlowError`).
Change = Callable[[BotSpec, list[str]], FlowEdit]


def _unchanged(problem: str) -> InvalidError:
    return InvalidError(f"Nothing was changed: {problem.rstrip('.')}.")


def picture_name(bot: str) -> str:
    return f"{bot}-flow.png"


class Flows:
    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    async def spec(self, caller: Caller, bot: str) -> BotSpec:
        """The draft (any member of the team may look at it)."""
        return (await self.ops.draft(caller, bot)).spec

    # -- the commands ---------------------------------------------------------------------------

    async def show(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowShow)
        bot = turn.bot(command.bot)
        spec = await self.spec(turn.caller, bot)
        picture = await flow_picture(outline(spec))
        text = outline_text(spec)
        if not spec.pipeline:
            text += (
                f"\nAdd a step with `/flow {bot} add KIND ID [key=value ...]` (e.g. `/flow {bot} "
                f'add template thanks text="Thanks!"`), or route messages with '
                f'`/route {bot} "KEYWORD" to STEP`.'
            )
        image = Attachment(name=picture_name(bot), mime="image/png", data=picture.png)
        return [Answer(text, file=image)]

    async def add(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowAdd)
        return await self._edit(
            turn,
            command.bot,
            lambda spec, _: flow.add_step(
                spec, command.kind, command.id, _present(command.params), after=command.after
            ),
        )

    async def set(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowSet)
        return await self._edit(
            turn, command.bot, lambda spec, _: flow.set_params(spec, command.id, command.params)
        )

    async def link(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowLink)
        return await self._edit(
            turn, command.bot, lambda spec, _: flow.link(spec, command.id, command.next)
        )

    async def remove(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowRemove)
        return await self._edit(
            turn, command.bot, lambda spec, _: flow.remove_step(spec, command.id)
        )

    async def ask(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, FlowAsk)
        return await self._edit(
            turn,
            command.bot,
            lambda spec, _: flow.ask_for(spec, command.field.lower(), command.question),
        )

    async def route(self, turn: Turn, command: Command) -> list[Answer]:
        """To a step of the flow, else to another bot of the team (through a `bot` step)."""
        assert isinstance(command, Route)
        match: dict[str, JsonValue] = {command.match: command.value}
        target = command.step.lower()

        def change(spec: BotSpec, team: list[str]) -> FlowEdit:
            if any(step.id == target for step in spec.steps()):
                return flow.add_route(spec, match, target, router=command.router)
            if target == flow.PEOPLE_STEP:  # to people of the team: a handoff step
                return flow.add_route(spec, match, people=True, router=command.router)
            if target in team:
                return flow.add_route(spec, match, ask_bot=target, router=command.router)
            ids = [step.id for step in spec.steps()]
            close = difflib.get_close_matches(target, [*ids, *team], n=1, cutoff=0.6)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            raise FlowError(
                f"{spec.name} has no step `{target}` and the team has no bot '{target}'{hint}"
            )

        return await self._edit(turn, command.bot, change)

    # -- one edit -------------------------------------------------------------------------------

    async def _edit(self, turn: Turn, named: str | None, change: Change) -> list[Answer]:
        bot = turn.bot(named)
        caller = turn.caller
        caller.require(Role.EDITOR, "Editing a flow")
        draft = await self.ops.draft(caller, bot)
        team = await self.ops.bot_names(caller)
        try:
            edited = change(draft.spec, team)
        except FlowError as exc:
            raise _unchanged(str(exc)) from None
        pipeline = [step.model_dump(mode="json") for step in edited.spec.pipeline]
        try:
            view = await self.ops.edit_draft(
                caller, bot, {"pipeline": pipeline}, revision=draft.revision
            )
        except InvalidError as exc:  # the compiled spec refused it: one line naming the step
            raise _unchanged(exc.message) from None
        said = f"{edited.said} (draft revision {view.revision})"
        return [Answer(f"{said}\n\n{outline_text(view.draft)}")]


def _present(params: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """A new step's settings: `key=` with nothing means no such setting."""
    return {key: value for key, value in params.items() if value is not None}
