"""The Studio as an MCP server at `/mcp` (streamable HTTP, the official `mcp` SDK).

Its tools are the Studio's commands: the typed definitions that drive the builder model's tools
(`studio.commands.tool_schemas`), run by the engine (`Studio.execute`) with the role of the team
API key the request carries, audited as that key, answering what chat answers. A command that
asks for a confirmation in chat (promote to production, rollback, delete, ...) takes a `confirm`
argument: without `confirm: true` it only says what it would do.

Stateless, with JSON answers: each HTTP request carries its key and stands alone (no MCP session
lives in this process), so any worker can answer any request; every tool answers once, and what
the Studio says later (a test run's report) waits in the key's mailbox, as for the HTTP front.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.types import (
    BlobResourceContents,
    CallToolRequestParams,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    TextResourceContents,
    Tool,
)
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from runtime.messages import Attachment
from studio.address import PULL_CHANNEL, studio_address
from studio.commands import Command, command_for_tool, tool_schemas
from studio.engine import FAILED, Studio, UnconfirmedError
from studio.errors import OperationError, UnauthorizedError
from studio.presenters import render_text
from studio.replies import Answer
from studio.roles import Caller

logger = logging.getLogger(__name__)

NAME = "chat-studio"
PATH = "/mcp"
INSTRUCTIONS = """Chat Studio builds, tests, promotes and runs LLM chatbots. These tools are \
the Studio's commands (the slash commands of its chat), run with the role of your team API key \
and recorded in the team's audit trail as that key.

A bot has a draft (prompt, model, greeting, fallback, tests, knowledge, a pipeline); `promote` \
freezes the draft into a numbered version in staging (only while its tests pass), `promote` \
with `to: production` runs staging's version in production; `deploy` puts an environment on \
the web, Slack or Telegram. The `offline` model needs no provider key.

Name the bot in every call (`bot`): calls are independent. Tools that are destructive or \
public (promote to production, rollback, delete, ...) change nothing without `confirm: true`: \
called without it they say what they would do. What the Studio reports later (a test run) \
waits for the key at GET /api/v1/studio/messages."""

_CONFIRM = "confirm"
_CONFIRM_SCHEMA = {
    "type": "boolean",
    "default": False,
    "description": (
        "true to carry the command out where chat would ask for a confirmation first; "
        "without it the call only says what it would do and changes nothing"
    ),
}
_CALLER = "chat_studio.caller"  # the ASGI scope key under which the key gate leaves the Caller
_FILE_URI = "chat-studio://files/"
_TEXT_MIMES = ("text/", "application/json", "application/yaml")


@dataclass(frozen=True, slots=True)
class _Offered:
    """A command as a tool: its definition, and whether a call may need `confirm: true`."""

    command: type[Command]
    tool: Tool
    confirmable: bool


def _may_need_confirmation(command: type[Command]) -> bool:
    """Whether some call of `command` waits for a confirmation in chat: every call (`confirm`),
    or depending on its arguments (an own `needs_confirmation`: promote to production)."""
    return command.confirm or command.needs_confirmation is not Command.needs_confirmation


def _offered() -> dict[str, _Offered]:
    """The commands the builder model may call (`tool_schemas`), by tool name."""
    offered = {}
    for definition in tool_schemas():
        function = definition["function"]
        command = command_for_tool(function["name"])
        assert command is not None
        schema = copy.deepcopy(function["parameters"])
        confirmable = _may_need_confirmation(command)
        if confirmable:
            schema["properties"][_CONFIRM] = dict(_CONFIRM_SCHEMA)
        tool = Tool(name=function["name"], description=function["description"], input_schema=schema)
        offered[tool.name] = _Offered(command, tool, confirmable)
    return offered


def _bearer(scope: Scope) -> str:
    scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


def _refused(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def _file(file: Attachment) -> ContentBlock:
    """A picture as an image; any other file as an embedded resource (text where it is)."""
    if file.data is not None and file.mime.startswith("image/"):
        return ImageContent(
            type="image", data=base64.b64encode(file.data).decode(), mime_type=file.mime
        )
    uri = _FILE_URI + quote(file.name)
    if file.data is None:
        text = file.content
    elif file.mime.startswith(_TEXT_MIMES):
        text = file.data.decode(errors="replace")
    else:
        blob = base64.b64encode(file.data).decode()
        return EmbeddedResource(
            type="resource", resource=BlobResourceContents(uri=uri, mime_type=file.mime, blob=blob)
        )
    return EmbeddedResource(
        type="resource", resource=TextResourceContents(uri=uri, mime_type=file.mime, text=text)
    )


def _content(answer: Answer) -> list[ContentBlock]:
    """An answer as the plain text fronts get (its fields as lines; no buttons, which an MCP
    client cannot press), and its file."""
    blocks: list[ContentBlock] = [
        TextContent(type="text", text=render_text(replace(answer, buttons=())))
    ]
    if answer.file is not None:
        blocks.append(_file(answer.file))
    return blocks


class StudioMcp:
    """The ASGI endpoint at `PATH`: a request without a valid team key is answered 401 and never
    reaches MCP; the others go to the SDK's streamable HTTP transport. `serving(studio)` runs it
    (in the app's lifespan)."""

    def __init__(self, *, version: str) -> None:
        self._tools = _offered()
        self._studio: Studio | None = None
        server: Server[Any] = Server(
            NAME,
            version=version,
            instructions=INSTRUCTIONS,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        # The transport's Host/Origin checks (against DNS rebinding) stay off: every request
        # needs a team key, which no page can make a browser send, and the service has
        # whatever host name it is deployed under.
        self._sessions = StreamableHTTPSessionManager(
            app=server, stateless=True, json_response=True
        )
        self._transport = StreamableHTTPASGIApp(self._sessions)

    @asynccontextmanager
    async def serving(self, studio: Studio) -> AsyncIterator[None]:
        """Answer for `studio` while inside. The SDK's session manager (the task group its
        requests run in) runs meanwhile in a task of its own, since a task group must be left
        by the task that entered it and a lifespan may be entered and left by two."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        running = asyncio.create_task(self._run(ready, stop))
        self._studio = studio
        try:
            await asyncio.wait((ready, running), return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()  # why it could not start
            yield
        finally:
            stop.set()
            await running
            self._studio = None

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        async with self._sessions.run():
            ready.set_result(None)
            await stop.wait()

    def route(self) -> Route:
        """The route to add to the app: exactly `PATH` (a mount would redirect it to `PATH/`),
        POST only: with no session and nothing to push, the GET stream a client may open would
        stay empty until it hung up, so it is told 405, as the transport's spec allows."""
        return Route(PATH, endpoint=self, methods=["POST"])

    def _running(self) -> Studio:
        if self._studio is None:
            raise RuntimeError("the MCP server is not being served")
        return self._studio

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _bearer(scope)
        try:
            if not key:
                raise UnauthorizedError("missing API key: send 'Authorization: Bearer KEY'")
            scope[_CALLER] = await self._running().ops.authenticate(key)
        except UnauthorizedError as exc:
            refusal = JSONResponse(
                {"error": exc.message}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
            return
        await self._transport(scope, receive, send)

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        offered = self._tools.get(name)
        return offered.tool.input_schema if offered is not None else None

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[offered.tool for offered in self._tools.values()])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: CallToolRequestParams
    ) -> CallToolResult:
        """Run the command a tool call names, as the key's caller; a refusal is a tool error
        with the Studio's one-line message."""
        offered = self._tools.get(params.name)
        if offered is None:
            return _refused(f"There is no tool '{params.name[:40]}'.")
        arguments = dict(params.arguments or {})
        confirmed = arguments.pop(_CONFIRM, False) if offered.confirmable else False
        if not isinstance(confirmed, bool):
            return _refused(f"Bad arguments for {params.name}: {_CONFIRM}: must be true or false.")
        try:
            command = offered.command.model_validate(arguments)
        except ValidationError as exc:
            return _refused(f"Bad arguments for {params.name}: {_problems(exc)}.")
        assert ctx.request is not None  # the HTTP request, on this transport
        caller: Caller = ctx.request.scope[_CALLER]  # left by the key gate (`__call__`)
        address = studio_address(PULL_CHANNEL, caller.team_id, caller.identity)
        try:
            answers = await self._running().execute(
                caller, command, address=address, confirmed=confirmed
            )
        except UnconfirmedError as exc:
            return _refused(
                f"{exc.message} Nothing was changed: call {params.name} again with "
                f"`{_CONFIRM}: true` to do it."
            )
        except OperationError as exc:
            return _refused(exc.message)
        except Exception:
            logger.exception("an MCP tool call failed", extra={"tool": params.name})
            return _refused(FAILED)
        return CallToolResult(content=[block for answer in answers for block in _content(answer)])
