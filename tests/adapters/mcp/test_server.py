"""The Studio as an MCP server: the official `mcp` client SDK against `/mcp` of the whole service,
served by uvicorn on 127.0.0.1 in this module's event loop (one service for the module: each test
names its own bots)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, ImageContent, TextContent

from studio.commands import COMMANDS, tool_name
from studio.settings import Settings
from tests.conftest import service_settings, serving_app
from tests.png import SIGNATURE

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True, slots=True)
class Served:
    base: str
    owner: str  # the `local` team's owner key
    agent: str  # an admin key named `agent`, the one the MCP calls use
    viewer: str  # a viewer key named `onlooker`

    def rest(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            base_url=f"{self.base}/api/v1", headers={"Authorization": f"Bearer {self.owner}"}
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    settings = service_settings(tmp_path_factory.mktemp("mcp"))
    async with serving_app(settings) as base:
        yield await _with_keys(base, settings)


async def _with_keys(base: str, settings: Settings) -> Served:
    """The served app with an admin key `agent` and a viewer key `onlooker` made."""
    owner = (Path(settings.data_dir) / "local.key").read_text().strip()
    keys = {}
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {owner}"}) as http:
        for name, role in (("agent", "admin"), ("onlooker", "viewer")):
            made = await http.post(f"{base}/api/v1/keys", json={"name": name, "role": role})
            assert made.status_code == 201, made.text
            keys[name] = made.json()["key"]
    return Served(base=base, owner=owner, agent=keys["agent"], viewer=keys["onlooker"])


@asynccontextmanager
async def mcp(served: Served, key: str | None = None) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session with the `agent` key (or `key`)."""
    headers = {"Authorization": f"Bearer {key or served.agent}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(f"{served.base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> CallToolResult:
    return await session.call_tool(tool, arguments)


async def succeeds(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await call(session, tool, **arguments)
    assert not result.is_error, text(result)
    return text(result)


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await call(session, tool, **arguments)
    assert result.is_error, text(result)
    return text(result)


async def test_the_tools_are_the_studios_tool_commands(served: Served) -> None:
    async with mcp(served) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        info = session.initialize_result
    assert info is not None
    assert info.server_info.name == "chat-studio"
    assert info.instructions is not None and "confirm: true" in info.instructions
    assert set(tools) == {tool_name(command) for command in COMMANDS if command.tool}
    assert "join" not in tools and "help" not in tools  # not tools: typed by a person
    for confirmable in ("promote", "rollback", "delete", "memory_forget"):
        assert tools[confirmable].input_schema["properties"]["confirm"]["type"] == "boolean"
    assert "confirm" not in tools["newbot"].input_schema["properties"]
    assert tools["newbot"].input_schema["required"] == ["bot"]
    assert tools["set"].description is not None
    assert tools["set"].description.startswith("/set BOT FIELD VALUE: ")


async def test_an_agent_builds_a_bot_audited_as_its_key(served: Served) -> None:
    async with mcp(served) as session:
        created = await succeeds(session, "newbot", bot="mcp-alpha", description="from an agent")
        edited = await succeeds(session, "set", bot="mcp-alpha", field="prompt", value="Be brief.")
        card = await succeeds(session, "show", bot="mcp-alpha")
    assert "Created draft bot *mcp-alpha*" in created
    assert "Model:" in created  # the answer's fields, as lines
    assert "prompt" in edited
    assert "Be brief." in card
    async with served.rest() as rest:
        bot = (await rest.get("/bots/mcp-alpha")).json()
        audit = (await rest.get("/audit")).json()
    assert bot["draft"]["prompt"] == "Be brief."
    assert bot["draft"]["description"] == "from an agent"
    rows = [(row["actor"], row["action"]) for row in audit if row["target"] == "mcp-alpha"]
    assert ("api:agent", "bot.create") in rows
    assert ("api:agent", "bot.edit") in rows
    assert {actor for actor, _ in rows} == {"api:agent"}


async def test_a_viewer_key_is_refused_and_nothing_changes(served: Served) -> None:
    async with mcp(served, served.viewer) as session:
        message = await refused(session, "newbot", bot="mcp-peek")
        listed = await succeeds(session, "bots")  # reading is what a viewer may do
    assert "needs the editor role" in message
    assert "you are a viewer" in message
    assert "mcp-peek" not in listed
    async with served.rest() as rest:
        assert (await rest.get("/bots/mcp-peek")).status_code == 404
        audit = (await rest.get("/audit")).json()
    assert not [row for row in audit if row["actor"] == "api:onlooker"]


async def test_promoting_to_production_needs_confirm_true(served: Served) -> None:
    async with mcp(served) as session:
        await succeeds(session, "newbot", bot="mcp-beta")
        staged = await succeeds(session, "promote", bot="mcp-beta")
        asked = await refused(session, "promote", bot="mcp-beta", to="production")
        async with served.rest() as rest:
            unmoved = (await rest.get("/bots/mcp-beta")).json()["environments"]
        declined = await refused(session, "promote", bot="mcp-beta", to="production", confirm=False)
        moved = await succeeds(session, "promote", bot="mcp-beta", to="production", confirm=True)
    assert "v1" in staged
    assert "Put *mcp-beta* v1 (staging's version) in production?" in asked
    assert "Nothing was changed: call promote again with `confirm: true`" in asked
    assert declined == asked
    assert unmoved == {"staging": 1}
    assert "production now runs v1" in moved
    async with served.rest() as rest:
        bot = (await rest.get("/bots/mcp-beta")).json()
        audit = (await rest.get("/audit")).json()
    assert bot["environments"] == {"staging": 1, "production": 1}
    promotions = [
        row for row in audit if (row["target"], row["action"]) == ("mcp-beta", "bot.promote")
    ]
    assert len(promotions) == 2
    assert {row["actor"] for row in promotions} == {"api:agent"}


async def test_a_confirmed_delete_is_bound_to_what_it_would_do(served: Served) -> None:
    async with mcp(served) as session:
        await succeeds(session, "newbot", bot="mcp-gone")
        asked = await refused(session, "delete", bot="mcp-gone")
        async with served.rest() as rest:
            assert (await rest.get("/bots/mcp-gone")).status_code == 200
        await succeeds(session, "delete", bot="mcp-gone", confirm=True)
        missing = await refused(session, "delete", bot="mcp-gone", confirm=True)
    assert "Delete *mcp-gone*" in asked
    assert "No bot named 'mcp-gone'" in missing
    async with served.rest() as rest:
        assert (await rest.get("/bots/mcp-gone")).status_code == 404


async def test_bad_arguments_and_unknown_bots_are_tool_errors(served: Served) -> None:
    async with mcp(served) as session:
        await succeeds(session, "newbot", bot="mcp-gamma")
        field = await refused(session, "set", bot="mcp-gamma", field="colour", value="red")
        missing = await refused(session, "set", bot="mcp-gamma", field="prompt")
        extra = await refused(session, "newbot", bot="mcp-delta", confirm=True)
        not_bool = await refused(
            session, "promote", bot="mcp-gamma", to="production", confirm="yes"
        )
        unknown = await refused(session, "show", bot="mcp-ghost")
        no_bot = await refused(session, "show")
        no_tool = await refused(session, "launch", bot="mcp-gamma")
        blank = await refused(session, "try", bot="mcp-gamma", message="   ")
    assert field.startswith("Bad arguments for set: field: Input should be 'prompt'")
    assert missing == "Bad arguments for set: value: Field required."
    assert extra == "Bad arguments for newbot: confirm: Extra inputs are not permitted."
    assert not_bool == "Bad arguments for promote: confirm: must be true or false."
    assert unknown == "No bot named 'mcp-ghost'."
    assert no_bot.startswith("Which bot?")  # calls are independent: no bot is remembered
    assert no_tool == "There is no tool 'launch'."
    assert blank == "What should I say to mcp-gamma? /try mcp-gamma MESSAGE"  # no turn run
    for message in (field, missing, extra, unknown, no_tool):
        assert "Traceback" not in message and "\n" not in message
    async with served.rest() as rest:
        assert (await rest.get("/bots/mcp-delta")).status_code == 404


async def test_a_flow_comes_as_a_picture(served: Served) -> None:
    async with mcp(served) as session:
        await succeeds(session, "newbot", bot="mcp-flow")
        result = await call(session, "flow", bot="mcp-flow")
    assert not result.is_error
    words, picture = result.content
    assert isinstance(words, TextContent) and "(file: " in words.text
    assert isinstance(picture, ImageContent) and picture.mime_type == "image/png"
    assert base64.b64decode(picture.data).startswith(SIGNATURE)


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        (None, "missing API key: send 'Authorization: Bearer KEY'"),
        ("Bearer cs_not-a-key", "invalid API key"),
        ("Basic dXNlcjpwYXNz", "missing API key: send 'Authorization: Bearer KEY'"),
    ],
)
async def test_no_key_or_a_bad_key_is_401_before_mcp(
    served: Served, authorization: str | None, error: str
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with httpx2.AsyncClient() as http:
        answer = await http.post(
            f"{served.base}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers=headers,
        )
    assert answer.status_code == 401
    assert answer.json() == {"error": error}
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_the_sdk_client_gets_no_tools_without_a_valid_key(served: Served) -> None:
    listed = []
    with pytest.RaisesGroup(MCPError, flatten_subgroups=True):  # the handshake fails
        async with mcp(served, "cs_not-a-key") as session:
            listed.append(await session.list_tools())
    assert not listed


async def test_no_get_stream_is_left_open(served: Served) -> None:
    """Stateless: nothing is ever pushed, so a client's GET stream is refused, not held."""
    headers = {"Authorization": f"Bearer {served.agent}", "Accept": "text/event-stream"}
    async with httpx2.AsyncClient(headers=headers, timeout=5) as http:
        answer = await http.get(f"{served.base}/mcp")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


async def test_mcp_is_not_in_the_openapi_document(served: Served) -> None:
    async with httpx2.AsyncClient() as http:
        document = (await http.get(f"{served.base}/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/mcp")]
