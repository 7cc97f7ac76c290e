"""Tools by conversation: `/tool BOT add` (an OpenAPI service), `add-mcp` (an MCP server),
`list` and `remove`. The service is read when the tool is added (`ToolGateway.describe`): the
operations chosen, with their schemas, are frozen into the draft, so a version calls exactly what
was checked then. Saved through `Operations.edit_draft` (editor role, revision check, the spec's
compilation, the audit event)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from builders.spec import ToolSpec
from runtime.tools.base import ToolSetupError
from studio import presenters
from studio.commands import Command, ToolAdd, ToolAddMcp, ToolList, ToolRemove
from studio.errors import InvalidError, NotAvailableError
from studio.operations import SENDING_SECRETS, Operations
from studio.replies import Answer
from studio.roles import Role
from studio.views import BotView

if TYPE_CHECKING:
    from runtime.tools.gateway import ToolGateway
    from studio.engine import Turn

_LABEL = re.compile(r"[^a-z0-9]+")
_GENERIC = {"api", "www", "mcp", "app", "service", "services", "openapi"}


def default_name(url: str) -> str:
    """A tool's name from its host: the first label that says something ("orders" for
    api.orders.example.com, "acme" for mcp.acme.io); "tool" when none does."""
    host = urlsplit(url).hostname or ""
    for label in host.split("."):
        name = _LABEL.sub("-", label.lower()).strip("-")
        if name and name not in _GENERIC and name[0].isalpha():
            return name[:40]
    return "tool"


class Tools:
    def __init__(self, ops: Operations, gateway: ToolGateway | None) -> None:
        self.ops = ops
        self.gateway = gateway

    async def add(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolAdd | ToolAddMcp)
        bot = turn.bot(command.bot)
        caller = turn.caller
        caller.require(Role.EDITOR, "Adding a tool")
        if command.auth is not None:  # reading the service sends it the secret already
            caller.require(Role.ADMIN, SENDING_SECRETS)
        if self.gateway is None:
            raise NotAvailableError("Tools are not available in this service.")
        draft = await self.ops.draft(caller, bot)
        name = command.tool_name or default_name(command.url)
        try:
            tool = await self.gateway.describe(
                kind="openapi" if isinstance(command, ToolAdd) else "mcp",
                name=name,
                url=command.url,
                wanted=command.operations,
                auth=command.auth,
                team_id=caller.team_id,
            )
        except ToolSetupError as exc:
            raise InvalidError(f"Nothing was changed: {str(exc).rstrip('.')}.") from None
        if command.allow_changes:
            tool = tool.model_copy(
                update={
                    "operations": [
                        op.model_copy(update={"allowed": True}) if op.changes else op
                        for op in tool.operations
                    ]
                }
            )
        replaced = any(existing.name == name for existing in draft.spec.tools)
        tools = [existing for existing in draft.spec.tools if existing.name != name]
        view = await self._save(turn, bot, [*tools, tool], draft.revision)
        return [presenters.tool_added(view.name, tool, replaced=replaced, revision=view.revision)]

    async def show(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolList)
        bot = turn.bot(command.bot)
        draft = await self.ops.draft(turn.caller, bot)
        return [presenters.tool_list(draft.name, draft.spec.tools)]

    async def remove(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolRemove)
        bot = turn.bot(command.bot)
        turn.caller.require(Role.EDITOR, "Removing a tool")
        draft = await self.ops.draft(turn.caller, bot)
        kept = [tool for tool in draft.spec.tools if tool.name != command.tool_name]
        if len(kept) == len(draft.spec.tools):
            names = ", ".join(tool.name for tool in draft.spec.tools) or "none"
            raise InvalidError(
                f"{draft.name} has no tool '{command.tool_name}' (its tools: {names})."
            )
        view = await self._save(turn, bot, kept, draft.revision)
        return [
            Answer(
                f"Removed the tool *{command.tool_name}* from *{view.name}*'s draft "
                f"(revision {view.revision})."
            )
        ]

    async def _save(self, turn: Turn, bot: str, tools: list[ToolSpec], revision: int) -> BotView:
        try:
            return await self.ops.edit_draft(
                turn.caller,
                bot,
                {"tools": [tool.model_dump(mode="json") for tool in tools]},
                revision=revision,
            )
        except InvalidError as exc:  # e.g. a tool step still calls a removed operation
            raise InvalidError(f"Nothing was changed: {exc.message.rstrip('.')}.") from None
