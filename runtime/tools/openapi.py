"""HTTP tools from OpenAPI documents: `describe` reads a document into a `ToolSpec`
(`runtime.tools.openapi_document`), `call` runs one of its operations.

A call goes only to the tool's own host (its `base_url`, which must be on the document's host),
at an address checked to be public unless private addresses are allowed (`runtime.net`: pinned
to the checked address; each redirect, at most `MAX_REDIRECTS`, checked again and kept on that
host). Arguments cannot reach beyond their place: path values are percent-encoded whole (no `/`,
`?` or dot segment escapes), the platform's headers are never arguments. The answer is bounded
in time (`tool.timeout_s`) and size (`MAX_RESPONSE_BYTES`, refused before reading when declared);
whatever the service does becomes a `ToolResult`, never an exception.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import ssl
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import quote

import httpx
from pydantic import JsonValue

from builders.spec import MAX_TOOL_TIMEOUT_S, ToolOperation, ToolSpec
from runtime.net import (
    DownloadError,
    RedirectError,
    TooLargeError,
    UnsafeUrlError,
    download,
    open_followed,
    read_capped,
    same_service,
    transport_reason,
)
from runtime.tools.base import MAX_RESPONSE_BYTES, ToolResult, ToolSetupError, masked
from runtime.tools.openapi_document import (
    BODY,
    MAX_DOCUMENT_BYTES,
    PLACEHOLDER,
    REFUSED_HEADERS,
    parse_document,
    tool_from_document,
)

DOCUMENT_TIMEOUT_S = 15.0
DOCUMENT_REDIRECTS = 5
MAX_REDIRECTS = 3  # of one call
MAX_HOSTS = 64  # hosts with connections kept (each host's own pool: see `_client`)
ERROR_SNIPPET = 1000  # characters of an error answer the model sees
_TEXT_TYPES = ("json", "xml", "yaml", "javascript", "x-www-form-urlencoded", "graphql", "csv")


class OpenApiExecutor:
    kind: ClassVar[str] = "openapi"

    def __init__(self, *, allow_private: bool, client: httpx.AsyncClient | None = None) -> None:
        """`client`: the caller's, used for every host (it closes it); without one, the executor
        makes its own, one per host (no proxy from the environment, so a call goes to the address
        that was checked) and closes them. One per host because a pinned request names the
        address, not the host: a shared pool would hand one host's TLS connection (its name
        checked, its certificate) to another host behind the same address."""
        self._given = client
        self._clients: OrderedDict[str, httpx.AsyncClient] = OrderedDict()
        self._retiring: dict[asyncio.Task[None], httpx.AsyncClient] = {}
        self._tls: ssl.SSLContext | None = None  # made once (~30 ms), shared by every client
        self._allow_private = allow_private

    async def ready(self) -> None:
        return None  # httpx is loaded already

    async def describe(
        self,
        *,
        name: str,
        url: str,
        wanted: Sequence[str],
        auth: str | None,
        secret: str | None,
    ) -> ToolSpec:
        """The tool the document at `url` describes. The document is read without the secret
        (it only ever goes to the operations, once the host they are on is known)."""
        try:
            final, _, content = await download(
                self._client(url),
                url,
                allow_private=self._allow_private,
                max_bytes=MAX_DOCUMENT_BYTES,
                timeout_s=DOCUMENT_TIMEOUT_S,
                max_redirects=DOCUMENT_REDIRECTS,
            )
        except DownloadError as exc:
            raise ToolSetupError(str(exc)) from None
        document = await asyncio.to_thread(parse_document, content, shown=url)
        return await asyncio.to_thread(
            tool_from_document,
            document,
            name=name,
            url=str(final),  # where the document was found: its host is the one called
            document_url=final,
            wanted=wanted,
            auth=auth,
        )

    async def call(
        self,
        tool: ToolSpec,
        operation: ToolOperation,
        arguments: Mapping[str, JsonValue],
        *,
        secret: str | None,
    ) -> ToolResult:
        request = _request(tool, operation, arguments, secret)
        if isinstance(request, ToolResult):
            return request
        try:
            async with asyncio.timeout(tool.timeout_s):
                return await self._send(tool, request, secret)
        except (TimeoutError, httpx.TimeoutException):
            return ToolResult("timeout", f"no answer within {tool.timeout_s:g} s")
        except UnsafeUrlError as exc:
            return ToolResult("refused", str(exc))
        except RedirectError as exc:
            return ToolResult("error", str(exc))
        except httpx.LocalProtocolError:  # its message quotes the offending header, maybe ours
            return ToolResult("refused", "the request could not be sent (a header is not valid)")
        except httpx.RequestError as exc:  # connection, protocol (a bad Location too)
            return ToolResult(
                "unreachable", f"the service could not be reached ({transport_reason(exc)})"
            )

    async def _send(self, tool: ToolSpec, request: _Request, secret: str | None) -> ToolResult:
        opened = await open_followed(
            self._client(request.base),
            request.method,
            str(request.url),
            allow_private=self._allow_private,
            timeout_s=tool.timeout_s,
            max_redirects=MAX_REDIRECTS,
            stay_on=request.base,
            verb="called",
            headers=request.headers,
            **({"json": request.body} if request.has_body else {}),
        )
        response = opened.response
        status = response.status_code
        try:
            content_type = response.headers.get("content-type", "")
            if not _is_text(content_type):
                return _binary(status, content_type)
            try:
                body = await read_capped(response, MAX_RESPONSE_BYTES, shown="the answer")
            except TooLargeError as exc:
                reason = f"the answer is over {MAX_RESPONSE_BYTES:,} bytes"
                return ToolResult("too_large", reason, exc.size, status)
        finally:
            await response.aclose()
        text = _decoded(body, response.charset_encoding)
        if text is None:
            return _binary(status, content_type or "no content type")
        if "json" in content_type:
            text = _compact(text)
        if status >= 400:
            snippet = masked(text, secret)[:ERROR_SNIPPET]
            return ToolResult("error", f"HTTP {status}: {snippet}", len(body), status)
        return ToolResult("ok", text or f"HTTP {status} (no content)", len(body), status)

    def _client(self, url: str | httpx.URL) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            host = ""  # refused where it is read, with its reason
        client = self._clients.get(host)
        if client is not None:
            self._clients.move_to_end(host)
            return client
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        client = self._clients[host] = httpx.AsyncClient(trust_env=False, verify=self._tls)
        if len(self._clients) > MAX_HOSTS:  # the least recently used host's, closed once idle
            _, retired = self._clients.popitem(last=False)
            task = asyncio.get_running_loop().create_task(_close_idle(retired))
            self._retiring[task] = retired
            task.add_done_callback(self._retiring.pop)
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), OrderedDict()
        for client in clients:
            await client.aclose()
        retiring, self._retiring = dict(self._retiring), {}
        for task, client in retiring.items():
            task.cancel()
            await client.aclose()
        await asyncio.gather(*retiring, return_exceptions=True)


async def _close_idle(client: httpx.AsyncClient) -> None:
    """Close a retired client after its calls could have ended (the longest a call may last)."""
    await asyncio.sleep(MAX_TOOL_TIMEOUT_S + 1)
    await client.aclose()


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    url: httpx.URL
    base: httpx.URL
    headers: dict[str, str]
    body: JsonValue
    has_body: bool


def _request(
    tool: ToolSpec,
    operation: ToolOperation,
    arguments: Mapping[str, JsonValue],
    secret: str | None,
) -> _Request | ToolResult:
    """The request `arguments` make, or why it is refused."""
    if operation.method is None or operation.path is None:
        return _refused(f"'{operation.function}' is not an HTTP operation")
    try:
        document = httpx.URL(tool.url)
        base = httpx.URL(tool.base_url) if tool.base_url else document.copy_with(raw_path=b"/")
    except httpx.InvalidURL:
        return _refused("the tool's addresses are not valid URLs")
    if not same_service(document, base):
        return _refused(f"only the document's host ({document.host}) is called")
    path_values: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    body: dict[str, JsonValue] = {}
    for name, value in arguments.items():
        place = operation.places.get(name)
        if place is None:
            known = ", ".join(operation.places) or "none"
            return _refused(f"'{name}' is not an argument of '{operation.function}' ({known})")
        if value is None:
            continue
        if place == "path":
            text = _text(value)
            if not text:
                return _refused(f"the path argument '{name}' is empty")
            path_values[name] = _segment(text)
        elif place == "query":
            items = value if isinstance(value, list) else [value]
            query += [(name, _text(item)) for item in items]
        elif place == "header":
            if name.lower() in REFUSED_HEADERS or name.lower() == (tool.auth_header or "").lower():
                return _refused(f"the header {name} is set by the platform")
            headers[name] = _text(value)
        else:
            body[name] = value
    missing = [name for name in PLACEHOLDER.findall(operation.path) if name not in path_values]
    if missing:
        return _refused(f"the path argument '{missing[0]}' is missing")
    path = PLACEHOLDER.sub(lambda match: path_values[match[1]], operation.path)
    if secret is not None:
        if tool.auth_header:
            headers[tool.auth_header] = secret
        else:
            headers["Authorization"] = f"Bearer {secret}"
    if any(_unsafe_header(value) for value in headers.values()):
        return _refused("a header value cannot hold a line break")
    whole = [name for name, place in operation.places.items() if place == "body"] == [BODY]
    has_body = BODY in body if whole else any(p == "body" for p in operation.places.values())
    try:
        url = httpx.URL(str(base).rstrip("/") + path, params=query)
    except httpx.InvalidURL as exc:
        return _refused(f"the arguments make no valid URL ({exc})")
    return _Request(
        operation.method, url, base, headers, body.get(BODY) if whole else body, has_body
    )


def _refused(reason: str) -> ToolResult:
    return ToolResult("refused", reason)


def _text(value: JsonValue) -> str:
    """A path, query or header value as text (JSON for what is not a scalar)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _segment(text: str) -> str:
    """`text` as one path segment: every reserved character encoded, and a dot segment (which
    URLs resolve away) encoded too."""
    if text.strip(".") == "":
        return "%2E" * len(text)
    return quote(text, safe="")


def _unsafe_header(value: str) -> bool:
    return any(char in value for char in "\r\n\0")


def _is_text(content_type: str) -> bool:
    """Whether a body of this type can be given to a model (no type: judged by decoding)."""
    kind = content_type.partition(";")[0].strip().lower()
    if not kind or kind.startswith("text/"):
        return True
    return kind.startswith("application/") and any(part in kind for part in _TEXT_TYPES)


def _binary(status: int, content_type: str) -> ToolResult:
    kind = content_type.partition(";")[0].strip()[:100]
    return ToolResult("error", f"HTTP {status}: the answer is {kind}, not text", 0, status)


def _decoded(body: bytes, charset: str | None) -> str | None:
    """The body as text (None: it is not text in its charset, or UTF-8 without one)."""
    encoding = "utf-8"
    if charset:
        with contextlib.suppress(LookupError):
            encoding = codecs.lookup(charset).name
    try:
        return body.decode(encoding)
    except UnicodeDecodeError:
        return None


def _compact(text: str) -> str:
    """JSON without its indentation (fewer tokens for the model); anything else as it is."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        return text
