"""Tools by conversation: `/tool BOT add` (an OpenAPI service), `add-mcp` (an MCP server),
`list` and `remove`. The service is read when the tool is added (`ToolGateway.describe`): the
operations chosen, with their schemas, are frozen into the draft, so a version calls exactly what
was checked then. Saved through `Operations.edit_draft` (editor role, revision check, the spec's
compilation, the audit event). REST (`adapters/web/tools_api.py`) calls the same operations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from builders.spec import ToolSpec
from runtime.tools.base import ToolSetupError
from studio import presenters
from studio.commands import Command, ToolAdd, ToolAddMcp, ToolList, ToolRemove
from studio.errors import InvalidError, NotAvailableError, NotFoundError
from studio.operations import SENDING_SECRETS, Operations
from studio.replies import Answer
from studio.roles import Caller, Role
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

    # -- the operations (chat and REST) -----------------------------------------------------------

    async def add_tool(
        self,
        caller: Caller,
        bot: str,
        *,
        kind: str,
        url: str,
        wanted: Sequence[str] = (),
        auth: str | None = None,
        allow_changes: bool = False,
        name: str | None = None,
    ) -> ToolAdded:
        """Read the service at `url` and give the draft its operations `wanted` (all when none)
        as the tool `name` (default: from the host), replacing a tool of that name."""
        caller.require(Role.EDITOR, "Adding a tool")
        if auth is not None:  # reading the service sends it the secret already
            caller.require(Role.ADMIN, SENDING_SECRETS)
        if self.gateway is None:
            raise NotAvailableError("Tools are not available in this service.")
        draft = await self.ops.draft(caller, bot)
        name = name or default_name(url)
        try:
            tool = await self.gateway.describe(
                kind=kind, name=name, url=url, wanted=wanted, auth=auth, team_id=caller.team_id
            )
        except ToolSetupError as exc:
            raise InvalidError(f"Nothing was changed: {str(exc).rstrip('.')}.") from None
        if allow_changes:
            allowed = [
                op.model_copy(update={"allowed": True}) if op.changes else op
                for op in tool.operations
            ]
            tool = tool.model_copy(update={"operations": allowed})
        replaced = any(existing.name == name for existing in draft.spec.tools)
        tools = [existing for existing in draft.spec.tools if existing.name != name]
        view = await self._save(caller, bot, [*tools, tool], draft.revision)
        return ToolAdded(bot=view.name, tool=tool, replaced=replaced, revision=view.revision)

    async def tools(self, caller: Caller, bot: str) -> tuple[str, list[ToolSpec]]:
        """The draft's tools (any member of the team): (the bot's name, its tools)."""
        draft = await self.ops.draft(caller, bot)
        return draft.name, list(draft.spec.tools)

    async def remove_tool(self, caller: Caller, bot: str, name: str) -> BotView:
        caller.require(Role.EDITOR, "Removing a tool")
        draft = await self.ops.draft(caller, bot)
        kept = [tool for tool in draft.spec.tools if tool.name != name]
        if len(kept) == len(draft.spec.tools):
            names = ", ".join(tool.name for tool in draft.spec.tools) or "none"
            raise NotFoundError(f"{draft.name} has no tool '{name}' (its tools: {names}).")
        return await self._save(caller, bot, kept, draft.revision)

    async def _save(
        self, caller: Caller, bot: str, tools: list[ToolSpec], revision: int
    ) -> BotView:
        try:
            return await self.ops.edit_draft(
                caller,
                bot,
                {"tools": [tool.model_dump(mode="json") for tool in tools]},
                revision=revision,
            )
        except InvalidError as exc:  # e.g. a tool step still calls a removed operation
            raise InvalidError(f"Nothing was changed: {exc.message.rstrip('.')}.") from None

    # -- the commands ---------------------------------------------------------------------------

    async def add(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolAdd | ToolAddMcp)
        added = await self.add_tool(
            turn.caller,
            turn.bot(command.bot),
            kind="openapi" if isinstance(command, ToolAdd) else "mcp",
            url=command.url,
            wanted=command.operations,
            auth=command.auth,
            allow_changes=command.allow_changes,
            name=command.tool_name,
        )
        return [
            presenters.tool_added(
                added.bot, added.tool, replaced=added.replaced, revision=added.revision
            )
        ]

    async def show(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolList)
        name, tools = await self.tools(turn.caller, turn.bot(command.bot))
        return [presenters.tool_list(name, tools)]

    async def remove(self, turn: Turn, command: Command) -> list[Answer]:
        assert isinstance(command, ToolRemove)
        view = await self.remove_tool(turn.caller, turn.bot(command.bot), command.tool_name)
        return [
            Answer(
                f"Removed the tool *{command.tool_name}* from *{view.name}*'s draft "
                f"(revision {view.revision})."
            )
        ]


@dataclass(frozen=True, slots=True)
class ToolAdded:
    bot: str
    tool: ToolSpec
    replaced: bool  # a tool of that name was there before
    revision: int  # the draft's, after
