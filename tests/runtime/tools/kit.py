"""A tool kind written for the tests (answers from a table in memory) and its secrets: the
gateway, the llm node's loop and the `tool` step are tested through it, the executors of real
kinds (OpenAPI, MCP) by their own tests against fake services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import JsonValue

from builders.spec import ToolOperation, ToolSpec
from runtime.tools.base import ToolResult
from runtime.tools.gateway import ToolGateway

ORDERS = {"A-1": {"id": "A-1", "status": "shipped"}, "B-2": {"id": "B-2", "status": "packing"}}


def operation(function: str, **fields: Any) -> ToolOperation:
    return ToolOperation.model_validate({"function": function, "id": function, **fields})


GET_ORDER = operation(
    "getOrder",
    description="Look up an order by its id",
    method="GET",
    path="/orders/{id}",
    parameters={
        "type": "object",
        "properties": {"id": {"type": "string", "pattern": "^[A-Z]-[0-9]+$"}},
        "required": ["id"],
    },
    places={"id": "path"},
)
CREATE_TICKET = operation(
    "createTicket",
    method="POST",
    path="/tickets",
    parameters={"type": "object", "properties": {"text": {"type": "string"}}},
    places={"text": "body"},
    changes=True,
)


def shop(*operations: ToolOperation, auth: str | None = "shop-key", **fields: Any) -> ToolSpec:
    return ToolSpec(
        name="shop",
        kind="openapi",
        url="https://shop.example/openapi.json",
        base_url="https://shop.example",
        auth=auth,
        operations=list(operations or (GET_ORDER, CREATE_TICKET)),
        **fields,
    )


@dataclass
class TableTools:
    """A tool kind that answers getOrder from `ORDERS` and records each call; `echo_secret`
    makes answers carry the secret (a service that reflects a header back); `delay_s` stalls."""

    kind: ClassVar[str] = "openapi"
    calls: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    echo_secret: bool = False
    delay_s: float = 0.0

    async def ready(self) -> None:
        return None

    async def describe(
        self, *, name: str, url: str, wanted: Sequence[str], auth: str | None, secret: str | None
    ) -> ToolSpec:
        return shop(auth=auth)

    async def call(
        self,
        tool: ToolSpec,
        operation: ToolOperation,
        arguments: Mapping[str, JsonValue],
        *,
        secret: str | None,
    ) -> ToolResult:
        self.calls.append((operation.id, dict(arguments), secret))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if operation.id == "createTicket":
            return ToolResult("ok", '{"ticket": 7}', size=13, http_status=201)
        order = ORDERS.get(str(arguments.get("id")))
        if order is None:
            return ToolResult("error", "HTTP 404: no such order", size=14, http_status=404)
        body = json.dumps({**order, "seen_key": secret} if self.echo_secret else order)
        return ToolResult("ok", body, size=len(body), http_status=200)

    async def close(self) -> None:
        return None


@dataclass
class Vault:
    """Secrets per team, in memory."""

    values: dict[tuple[int, str], str] = field(default_factory=dict)

    async def reveal(self, team_id: int, name: str) -> str | None:
        return self.values.get((team_id, name))


def tool_gateway(tools: TableTools | None = None, **secrets: str) -> ToolGateway:
    vault = Vault({(1, name.replace("_", "-")): value for name, value in secrets.items()})
    return ToolGateway([tools or TableTools()], secrets=vault)
