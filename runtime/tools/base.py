"""What every kind of tool shares: the result of a call, the record a turn keeps of it, where
secrets come from, and the executor each kind (OpenAPI over HTTP, MCP) implements."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol
from urllib.parse import quote, quote_plus

from pydantic import JsonValue

from builders.spec import HANDOFF_FUNCTION, ToolOperation, ToolSpec

# ok: the service answered with success. error: it answered with a failure (HTTP 4xx/5xx, an
# MCP error). timeout, unreachable (connection, DNS, protocol), too_large (over the size cap),
# refused: the platform did not call it (unknown tool, bad arguments, a change not allowed, a
# private address, a secret that is not set).
ToolStatus = Literal["ok", "error", "timeout", "unreachable", "too_large", "refused"]
MAX_RESPONSE_BYTES = 1_000_000  # what one call may answer (HTTP body, MCP content)
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave. `content` goes to the model as untrusted data: the response (ok,
    error) or a one-line reason; `size` is the bytes received; `http_status` when over HTTP."""

    status: ToolStatus
    content: str
    size: int = 0
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One call as the turn keeps it (for `/try`, traces and stats): `arguments` as JSON with
    secret values masked, `detail` one line (the HTTP status or the reason)."""

    function: str
    arguments: str
    status: ToolStatus
    ms: float
    size: int
    detail: str = ""
    started: float = 0.0  # `runtime.trace.clock()` when the call began (for the turn's trace)


def function_definitions(tools: Sequence[ToolSpec]) -> list[dict[str, JsonValue]]:
    """The bot's operations as OpenAI tool definitions, the way the model is offered them."""
    return [
        {
            "type": "function",
            "function": {
                "name": operation.function,
                "description": (operation.description or tool.description or operation.id)[:1000],
                "parameters": operation.parameters,
            },
        }
        for tool in tools
        for operation in tool.operations
    ]


MASK = "[secret]"


def masked(text: str, secret: str | None) -> str:
    """`text` with the secret's value replaced by `MASK`, also as a service may echo it back
    escaped (in JSON, HTML or a URL). Do it before cutting text short: a cut through the value
    would leave part of it."""
    if not secret:
        return text
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        html.escape(secret),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


class ToolSetupError(ValueError):
    """A tool cannot be added: its document or server is unreachable, malformed, or lacks what
    was asked for. The message is one line for the builder."""


class SecretSource(Protocol):
    """A team's secrets, in clear, for the moment of a call (never kept by the caller)."""

    async def reveal(self, team_id: int, name: str) -> str | None: ...


class ToolExecutor(Protocol):
    """One kind of tool (`kind` is `ToolSpec.kind`). `describe` reads a service when a tool is
    added (`ToolSetupError`); `call` runs one operation. Both keep to the service's own host,
    refuse private addresses unless allowed, and bound time and size; neither raises for what
    the service does (a failure is a `ToolResult`)."""

    kind: ClassVar[str]

    async def ready(self) -> None:
        """Load what calls need (an SDK's import) now, outside any call's time limit."""
        ...

    async def describe(
        self,
        *,
        name: str,
        url: str,
        wanted: Sequence[str],
        auth: str | None,
        secret: str | None,
    ) -> ToolSpec: ...

    async def call(
        self,
        tool: ToolSpec,
        operation: ToolOperation,
        arguments: Mapping[str, JsonValue],
        *,
        secret: str | None,
    ) -> ToolResult: ...

    async def close(self) -> None: ...


def function_names(names: Iterable[str]) -> list[str]:
    """A name the model can call (OpenAI's `^[A-Za-z0-9_-]{1,64}$`) for each of a service's
    names, in order, each unique: other characters become `_`, a repeat gets `_2`, `_3`..."""
    taken = {HANDOFF_FUNCTION}  # the model's own tool to hand over to a person
    functions: list[str] = []
    for name in names:
        base = _NOT_IN_NAMES.sub("_", name).strip("_")[:64] or "tool"
        function, n = base, 1
        while function in taken:
            n += 1
            function = f"{base[: 64 - len(str(n)) - 1]}_{n}"
        taken.add(function)
        functions.append(function)
    return functions
