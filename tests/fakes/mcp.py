"""A fake MCP server, built with the official SDK (`MCPServer`) and served over streamable HTTP
on 127.0.0.1:0 in its own thread, so the real client reaches it over real HTTP.

    fake = FakeMcp().start()
    fake.url                        # http://127.0.0.1:PORT/mcp, the endpoint
    fake.calls[-1].name             # each tool call: name, arguments, Authorization received
    fake.requests[-1].headers       # each HTTP request: method, path, headers (lower-case names)
    fake.page_size = 2              # tools/list answers in pages of 2 (None: one page)
    fake.legacy = True              # refuses `server/discover`: a 2025 server (a session each)
    fake.token = "abc"              # answers 401 unless `Authorization: Bearer abc`
    fake.slow_s = 5.0               # how long `slow_tool` sleeps
    fake.list_delay_s = 1.0         # tools/list answers after 1 s
    fake.bulky = True               # tools/list also offers a tool described in over 1 MB
    fake.stop()

Tools: `get_weather(city)` (read-only), `create_note(text)` (changes), `notes.search(query)`
(read-only; a name a model function cannot carry as it is), `lookup_order(order_id)` (the id
also sent as a header under the 2026 protocol), `slow_tool()`, `huge_tool()` (over
`MAX_RESPONSE_BYTES`), `failing_tool()` (an error result), `whoami()` (the Authorization header
it received), `chart()` (an image, no text), `stats()` (structured content, no text).

Besides the endpoint: `/page` answers an HTML page (not an MCP server), `/moved` redirects to
`/mcp` (same origin, 307) and `/elsewhere` to `http://localhost:PORT/mcp` (another host).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
    ToolAnnotations,
)
from pydantic import Field
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import Receive, Scope, Send

from runtime.tools.base import MAX_RESPONSE_BYTES
from tests.fakes.server import ServedFake
from tests.png import SIGNATURE

READ_ONLY = ToolAnnotations(read_only_hint=True)
HUGE_CHARS = MAX_RESPONSE_BYTES + 50_000


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request the fake received (any path), recorded before it is answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    authorization: str | None


class _PagedServer(MCPServer):
    """`MCPServer` answers tools/list in one page; this one pages when the fake says so."""

    def __init__(self, fake: FakeMcp) -> None:
        super().__init__("fake-mcp", log_level="WARNING")
        self._fake = fake

    async def _handle_list_tools(
        self, ctx: Any, params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        tools = await self.list_tools()
        if self._fake.list_delay_s:
            await anyio.sleep(self._fake.list_delay_s)
        if self._fake.bulky:
            tools.append(
                Tool(name="bulky", description="x" * HUGE_CHARS, input_schema={"type": "object"})
            )
        size = self._fake.page_size
        if size is None:
            return ListToolsResult(tools=tools)
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + size
        return ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )


class _Recorded:
    """The SDK's app behind what the fake adds: each HTTP request recorded, the token checked,
    the pages besides the endpoint, a 2025 server's refusal of `server/discover` (a class: an
    ASGI 3 app uvicorn recognises)."""

    def __init__(self, fake: FakeMcp) -> None:
        self._fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = self._fake._received(scope)
            token = self._fake.token
            if token is not None and request.headers.get("authorization") != f"Bearer {token}":
                await PlainTextResponse("Unauthorized", status_code=401)(scope, receive, send)
                return
            page = self._fake._pages().get(request.path)
            if page is not None:
                await page(scope, receive, send)
                return
            if self._fake.legacy and request.headers.get("mcp-method") == "server/discover":
                # What a server of the 2025 protocol answers a request outside a session.
                refusal = JSONResponse(
                    {
                        "jsonrpc": "2.0",
                        "id": None,
                        "error": {"code": -32600, "message": "No valid session ID provided"},
                    },
                    status_code=400,
                )
                await refusal(scope, receive, send)
                return
        await self._fake._app(scope, receive, send)


class FakeMcp(ServedFake):
    name = "mcp"
    lifespan = "on"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[HttpRequest] = []
        self.calls: list[ToolCall] = []
        self.page_size: int | None = None
        self.legacy = False
        self.token: str | None = None
        self.bulky = False
        self.list_delay_s = 0.0
        self.slow_s = 5.0
        server = _PagedServer(self)
        self._add_tools(server)
        self._app = server.streamable_http_app(
            # The tests reach it under other names too (a pinned host name, `localhost`).
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.app = _Recorded(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        """Stop gracefully first: the SDK's session manager then ends its sessions (forced, it is
        cut off and logs an error)."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        super().stop()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.calls.clear()
            self.page_size = None
            self.legacy = False
            self.token = None
            self.bulky = False
            self.list_delay_s = 0.0
            self.slow_s = 5.0

    def _received(self, scope: Scope) -> HttpRequest:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = HttpRequest(scope["method"], scope["path"], headers)
        with self._lock:
            self.requests.append(request)
        return request

    def _pages(self) -> dict[str, Response]:
        """What the fake answers besides the MCP endpoint."""
        return {
            "/page": HTMLResponse("<html><body>Welcome</body></html>"),
            "/moved": RedirectResponse("/mcp", status_code=307),
            "/elsewhere": RedirectResponse(f"http://localhost:{self.port}/mcp", status_code=307),
        }

    def _record(self, name: str, arguments: dict[str, Any], ctx: Context) -> None:
        authorization = (ctx.headers or {}).get("authorization")
        with self._lock:
            self.calls.append(ToolCall(name, arguments, authorization))

    def _add_tools(self, server: MCPServer) -> None:
        @server.tool(annotations=READ_ONLY)
        def get_weather(city: str, ctx: Context) -> str:
            """The weather in a city today."""
            self._record("get_weather", {"city": city}, ctx)
            return f"Sunny in {city}, 21 °C"

        @server.tool()
        def create_note(text: str, ctx: Context) -> str:
            """Save a note."""
            self._record("create_note", {"text": text}, ctx)
            return f"Saved: {text}"

        @server.tool(name="notes.search", annotations=READ_ONLY)
        def notes_search(query: str, ctx: Context) -> str:
            """Search the notes."""
            self._record("notes.search", {"query": query}, ctx)
            return f"No notes match {query}"

        @server.tool(annotations=READ_ONLY)
        def lookup_order(
            order_id: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Order-Id"})],
            ctx: Context,
        ) -> str:
            """An order's status (its id also travels in a header, the 2026 protocol's rule)."""
            self._record("lookup_order", {"order_id": order_id}, ctx)
            return f"Order {order_id} has shipped"

        @server.tool(annotations=READ_ONLY)
        async def slow_tool(ctx: Context) -> str:
            """Takes its time."""
            self._record("slow_tool", {}, ctx)
            await anyio.sleep(self.slow_s)
            return "finally"

        @server.tool(annotations=READ_ONLY)
        def huge_tool(ctx: Context) -> str:
            """Answers more than a call may."""
            self._record("huge_tool", {}, ctx)
            return "x" * HUGE_CHARS

        @server.tool(annotations=READ_ONLY)
        def failing_tool(ctx: Context) -> str:
            """Always fails."""
            self._record("failing_tool", {}, ctx)
            raise ToolError("the order service is down")

        @server.tool(annotations=READ_ONLY)
        def whoami(ctx: Context) -> str:
            """The Authorization header this call came with."""
            self._record("whoami", {}, ctx)
            return f"you sent: {(ctx.headers or {}).get('authorization', 'nothing')}"

        @server.tool(annotations=READ_ONLY)
        def chart(ctx: Context) -> Image:
            """A chart, as a 3 KB picture."""
            self._record("chart", {}, ctx)
            return Image(data=SIGNATURE + bytes(3 * 1024 - len(SIGNATURE)), format="png")

        @server.tool(annotations=READ_ONLY)
        def stats(ctx: Context) -> CallToolResult:
            """Numbers, as structured content only."""
            self._record("stats", {}, ctx)
            return CallToolResult(content=[], structured_content={"orders": 3, "open": 1})
