"""MCP tools: the tools of an MCP server, reached over streamable HTTP with the official `mcp`
SDK. `describe` lists a server's tools when one is added (their input schemas become the
operations' parameters; a tool not marked `readOnlyHint` changes something); `call` runs one.

Importing the SDK takes seconds (~3 s here), so this module does not: the work is in
`runtime.tools.mcp_sdk`, imported off the event loop on first use (`ready()` does it ahead).
What each exchange costs, how addresses are pinned and answers capped: see that module.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import JsonValue

from builders.spec import ToolOperation, ToolSpec
from runtime.tools.base import ToolResult

if TYPE_CHECKING:
    from runtime.tools.mcp_sdk import SdkExecutor

DESCRIBE_TIMEOUT_S = 15.0  # reading a server's tools, all pages included
MAX_PAGES = 20  # of a tools/list answer
MAX_TOOLS = 100  # one tool's operations (`ToolSpec.operations`)


class McpExecutor:
    kind: ClassVar[str] = "mcp"

    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._sdk: SdkExecutor | None = None
        self._loading = asyncio.Lock()

    async def ready(self) -> None:
        """Import the SDK now (in a thread) rather than at the first describe or call."""
        async with self._loading:
            if self._sdk is None:
                module = await asyncio.to_thread(importlib.import_module, "runtime.tools.mcp_sdk")
                self._sdk = module.SdkExecutor(allow_private=self._allow_private)

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
        return await (await self._loaded()).describe(
            name=name, url=url, wanted=wanted, auth=auth, secret=secret
        )

    async def call(
        self,
        tool: ToolSpec,
        operation: ToolOperation,
        arguments: Mapping[str, JsonValue],
        *,
        secret: str | None,
    ) -> ToolResult:
        """Call the tool `operation.id` once, within `tool.timeout_s` for the whole exchange
        (the first use also waits for the SDK's import)."""
        return await (await self._loaded()).call(tool, operation, arguments, secret=secret)

    async def close(self) -> None:
        """Nothing to release: no session outlives its call."""

    async def _loaded(self) -> SdkExecutor:
        if self._sdk is None:
            await self.ready()
        assert self._sdk is not None
        return self._sdk
