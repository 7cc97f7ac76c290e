"""The MCP executor's work over the official SDK (`runtime.tools.mcp` loads this module on first
use: importing the SDK takes seconds).

Every exchange is one session (agree the protocol, the request, close) opened by the task that
makes the call. The SDK binds a session to the task that opened it (anyio task groups), so a
session kept between calls would need a task of its own per server and a way to know that a call
which failed on a dropped session never ran before repeating it; a session per call is what is
safe. The SDK's `Client` agrees the protocol: a server of the 2026 protocol answers
`server/discover` and then needs no session (a call is two requests), an older one gets the
initialize handshake (initialize, its acknowledgement, the call, the closing DELETE). Building
the HTTP client is kept cheap by creating the TLS context once (~25 ms of CPU each time otherwise).
Measured against the fake server on 127.0.0.1 (a loaded 2-core machine): a call to a 2026 server
takes ~9-12 ms (2 requests, ~6 ms of this process's CPU), to a 2025 one ~21-25 ms (6 requests,
~13 ms); the call alone on a kept session would take ~6 ms. No connection outlives its call
either, so a remote server also costs a TCP (and TLS) handshake per call.

Addresses: the URL must be http(s); unless private addresses are allowed, its host must resolve
to public addresses only (`runtime.net`) and every request of the session goes to the checked
address itself, the Host header and TLS SNI keeping the name (`_Guard`, the HTTP client's
transport), so a DNS answer that changes after the check cannot redirect the session. The SDK
follows only redirects within the endpoint's origin; `_Guard` also refuses any request to another
host, so no redirect can reach one. Each HTTP answer is capped at `MAX_RESPONSE_BYTES` (encoded
bodies are not accepted, so the cap is what is read), and the whole exchange at the tool's timeout.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx2
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CONNECTION_CLOSED,
    AudioContent,
    CallToolRequest,
    CallToolRequestParams,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    PaginatedRequestParams,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
)
from pydantic import JsonValue, ValidationError

from builders.spec import ToolOperation, ToolSpec
from runtime.knowledge.extract import format_size
from runtime.net import UnsafeUrlError, parse_url, public_address
from runtime.tools.base import (
    MAX_RESPONSE_BYTES,
    ToolResult,
    ToolSetupError,
    ToolStatus,
    function_names,
)
from runtime.tools.mcp import DESCRIBE_TIMEOUT_S, MAX_PAGES, MAX_TOOLS

MAX_DESCRIPTION = 2000
_HEADER_KEY = '"x-mcp-header"'  # an input schema's mark of an argument mirrored in a header


class SdkExecutor:
    """`McpExecutor`'s work (see `runtime.tools.mcp`)."""

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._tls: ssl.SSLContext | None = None

    async def describe(
        self,
        *,
        name: str,
        url: str,
        wanted: Sequence[str],
        auth: str | None,
        secret: str | None,
    ) -> ToolSpec:
        """The server's tools (those `wanted`, all when none) as a tool of kind mcp;
        `ToolSetupError` with one line when it cannot be read or lacks what was asked for."""
        guard: _Guard | None = None
        try:
            async with asyncio.timeout(DESCRIBE_TIMEOUT_S):
                guard = await self._guard(url, verb="added")
                async with _session(url, guard, secret, DESCRIBE_TIMEOUT_S) as session:
                    listed, complete = await _list_tools(session, set(wanted))
        except UnsafeUrlError as exc:
            raise ToolSetupError(str(exc)) from None
        except TimeoutError:
            raise ToolSetupError(
                f"{url} could not be reached (no answer within {DESCRIBE_TIMEOUT_S:g} s)"
            ) from None
        except Exception as exc:
            raise ToolSetupError(_setup_problem(url, exc, guard, auth)) from None
        tools = _chosen(url, listed, wanted, complete=complete)
        functions = function_names(tool.name for tool in tools)
        operations = [
            _operation(url, function, tool) for function, tool in zip(functions, tools, strict=True)
        ]
        try:
            return ToolSpec(kind="mcp", name=name, url=url, auth=auth, operations=operations)
        except ValidationError as exc:
            raise ToolSetupError(f"{url} cannot be added: {_invalid(exc)}") from None

    async def call(
        self,
        tool: ToolSpec,
        operation: ToolOperation,
        arguments: Mapping[str, JsonValue],
        *,
        secret: str | None,
    ) -> ToolResult:
        """Call the tool `operation.id` once, within `tool.timeout_s` for the whole exchange."""
        guard: _Guard | None = None
        try:
            async with asyncio.timeout(tool.timeout_s):
                guard = await self._guard(tool.url, verb="called")
                async with _session(tool.url, guard, secret, tool.timeout_s) as session:
                    if _HEADER_KEY in json.dumps(operation.parameters):
                        # Arguments the 2026 protocol also sends as headers: the SDK learns
                        # which from a listing of the tool (the server refuses the call without).
                        await _list_tools(session, {operation.id})
                    request = CallToolRequest(
                        params=CallToolRequestParams(name=operation.id, arguments=dict(arguments))
                    )
                    # Sent as such: `call_tool` would list the tools again (one more request)
                    # to check structured content against an output schema the model never sees.
                    result = await session.send_request(request, CallToolResult)
        except UnsafeUrlError as exc:
            return ToolResult("refused", str(exc))
        except TimeoutError:
            size = guard.received if guard is not None else 0
            return ToolResult("timeout", f"no answer within {tool.timeout_s:g} s", size)
        except Exception as exc:
            return _call_problem(exc, guard)
        status: ToolStatus = "error" if result.is_error else "ok"
        return ToolResult(status, _content(result), guard.received)

    async def _guard(self, url: str, *, verb: str) -> _Guard:
        target = parse_url(url, verb=verb)
        address = None if self._allow_private else await public_address(target, url)
        if self._tls is None:  # loading the CA certificates blocks for ~25 ms: once, off the loop
            self._tls = await asyncio.to_thread(httpx2.create_ssl_context)
        return _Guard(
            host=httpx2.URL(url).host,
            sni=target.raw_host.decode("ascii"),
            address=address,
            tls=self._tls,
        )


@asynccontextmanager
async def _session(
    url: str, guard: _Guard, secret: str | None, timeout_s: float
) -> AsyncIterator[ClientSession]:
    """A session with the server at `url`, its protocol agreed, every request through `guard`.

    The SDK's `Client` agrees the protocol: `server/discover` first (a 2026 server then needs
    no session: the call is one more request), the initialize handshake with an older one."""
    headers = {"Accept-Encoding": "identity"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    # The HTTP timeouts are a backstop: the caller's deadline (the same) ends the exchange first.
    timeout = httpx2.Timeout(timeout_s + 1.0)
    async with (
        httpx2.AsyncClient(transport=guard, headers=headers, timeout=timeout) as http,
        # No SSE event limit of its own: `_Guard` caps each answer as a whole.
        Client(
            streamable_http_client(url, http_client=http, max_sse_event_size=None), cache=None
        ) as client,
    ):
        guard.initialized = True
        yield client.session


async def _list_tools(session: ClientSession, wanted: set[str]) -> tuple[list[Tool], bool]:
    """The tools listed, page after page, until every wanted one is seen (all when none is
    wanted) or `MAX_PAGES`; and whether the listing was complete."""
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools, True
        if wanted and wanted <= {tool.name for tool in tools}:
            return tools, False
    return tools, False


def _chosen(url: str, listed: list[Tool], wanted: Sequence[str], *, complete: bool) -> list[Tool]:
    by_name = {tool.name: tool for tool in listed}
    if not wanted:
        if not listed:
            raise ToolSetupError(f"{url} offers no tools")
        if len(listed) > MAX_TOOLS or not complete:
            more = f"{len(listed)}" if complete else f"more than {len(listed)}"
            raise ToolSetupError(
                f"{url} offers {more} tools; a tool takes at most {MAX_TOOLS}: "
                f"name the ones the bot needs ({_names(listed)})"
            )
        return listed
    unknown = [name for name in dict.fromkeys(wanted) if name not in by_name]
    if unknown:
        offered = _names(listed) or "none"
        raise ToolSetupError(
            f"{url} has no tool {', '.join(repr(name) for name in unknown)} (it offers: {offered})"
        )
    if len(set(wanted)) > MAX_TOOLS:
        raise ToolSetupError(f"a tool takes at most {MAX_TOOLS} of a server's tools")
    return [by_name[name] for name in dict.fromkeys(wanted)]


def _operation(url: str, function: str, tool: Tool) -> ToolOperation:
    try:
        return ToolOperation(
            function=function,
            id=tool.name,
            description=(tool.description or "").strip()[:MAX_DESCRIPTION],
            parameters=tool.input_schema,
            changes=not (tool.annotations and tool.annotations.read_only_hint),
        )
    except ValidationError as exc:
        raise ToolSetupError(
            f"{url}: the tool {tool.name!r} cannot be used ({_invalid(exc)})"
        ) from None


def _invalid(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}"[:300] if where else error["msg"][:300]


def _names(tools: Sequence[Tool], shown: int = 20) -> str:
    names = ", ".join(tool.name for tool in tools[:shown])
    return names + (f", and {len(tools) - shown} more" if len(tools) > shown else "")


def _content(result: CallToolResult) -> str:
    """The result as the model reads it: its text, non-text content named; structured content
    as compact JSON when there is no text."""
    parts = [_part(block) for block in result.content]
    texts = any(isinstance(block, TextContent) for block in result.content)
    if not texts and result.structured_content is not None:
        parts.insert(
            0, json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":"))
        )
    return "\n".join(parts)


def _part(block: object) -> str:
    match block:
        case TextContent():
            return block.text
        case ImageContent() | AudioContent():
            return f"[{block.mime_type}, {format_size(len(block.data) * 3 // 4)}]"
        case EmbeddedResource(resource=TextResourceContents() as resource):
            return resource.text
        case EmbeddedResource():
            return f"[{block.resource.mime_type or 'data'}: {block.resource.uri}]"
        case ResourceLink():
            return f"[link: {block.uri}]"
    return f"[{type(block).__name__}]"


class _Guard(httpx2.AsyncBaseTransport):
    """The transport of one session: requests only to the endpoint's host, sent to its checked
    address when there is one, each answer within `MAX_RESPONSE_BYTES`. It also keeps what the
    caller needs to tell what went wrong: bytes received, an answer too large, a session begun."""

    def __init__(self, *, host: str, sni: str, address: str | None, tls: ssl.SSLContext) -> None:
        self._host, self._sni, self._address = host, sni, address
        self._inner = httpx2.AsyncHTTPTransport(verify=tls, trust_env=False)
        self.received = 0
        self.too_large = False
        self.initialized = False  # the session started: what fails now, fails the request
        self.status: int | None = None  # of the latest answer

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host != self._host:
            raise _Refused(f"only {self._host} is called, not {request.url.host}")
        if self._address is not None:
            request = httpx2.Request(
                request.method,
                request.url.copy_with(host=self._address),
                headers=request.headers,  # Host keeps the name
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": self._sni},
            )
        response = await self._inner.handle_async_request(request)
        self.status = response.status_code
        if response.headers.get("content-encoding", "identity") != "identity":
            await response.aclose()
            raise _Refused("the server sent an encoded answer though none was asked for")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
            await response.aclose()
            self.too_large = True
            raise _TooLarge(_over_cap())
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Capped(response.stream, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, stream: httpx2.AsyncByteStream, guard: _Guard) -> None:
        self._stream, self._guard, self._size = stream, guard, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            self._size += len(chunk)
            self._guard.received += len(chunk)
            if self._size > MAX_RESPONSE_BYTES:
                self._guard.too_large = True
                raise _TooLarge(_over_cap())
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Refused(httpx2.TransportError):
    """A request `_Guard` does not send, or an answer it does not take."""


class _TooLarge(httpx2.TransportError):
    """An answer over `MAX_RESPONSE_BYTES`."""


def _setup_problem(url: str, exc: Exception, guard: _Guard | None, auth: str | None) -> str:
    if guard is not None and guard.too_large:
        return f"{url} sent too much ({_over_cap()})"
    cause = _cause(exc)
    if isinstance(cause, httpx2.TransportError):
        return f"{url} could not be reached ({_reason(cause)})"
    status = _failed_status(guard)
    if status in (401, 403):
        fix = f"the secret '{auth}' was not accepted" if auth else "it needs a secret (--auth)"
        return f"{url} refused access (HTTP {status}): {fix}"
    http = f"HTTP {status}: " if status else ""
    return f"{url} is not an MCP server ({http}{_reason(cause)})"


def _call_problem(exc: Exception, guard: _Guard | None) -> ToolResult:
    size = guard.received if guard is not None else 0
    if guard is not None and guard.too_large:
        return ToolResult("too_large", _over_cap(), size)
    cause = _cause(exc)
    status = _failed_status(guard)
    refused = isinstance(cause, MCPError) and cause.code != CONNECTION_CLOSED
    answered = (
        guard is not None and guard.initialized and (refused or isinstance(cause, ValidationError))
    )
    # An HTTP failure, an MCP error to the call itself or an answer that is no tool result is
    # the server's answer; anything else (connection, protocol, a session that would not
    # start) means the tool was not reached.
    reason = f"HTTP {status}: {_reason(cause)}" if status else _reason(cause)
    return ToolResult("error" if answered or status else "unreachable", reason, size, status)


def _failed_status(guard: _Guard | None) -> int | None:
    """The HTTP status of the latest answer, when it was a failure (for the message)."""
    status = guard.status if guard is not None else None
    return status if status is not None and status >= 400 else None


def _cause(exc: BaseException) -> BaseException:
    """The first error inside the SDK's task groups (they wrap what went wrong in groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


def _over_cap() -> str:
    return f"the answer is over {MAX_RESPONSE_BYTES:,} bytes"
