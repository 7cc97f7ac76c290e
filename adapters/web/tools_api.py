"""A bot's tools over REST: the same operations as `/tool` in chat (`studio.tools`). Adding one
reads the service now (its OpenAPI document or MCP server) and freezes the chosen operations,
with their argument schemas, into the draft."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, StringConstraints

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from builders.spec import ToolSpec
from studio.commands import SecretRef, ToolSetName, ToolUrl, ToolWanted
from studio.roles import Caller

router = APIRouter(prefix="/api/v1", tags=["tools"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
ToolName = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class ToolIn(BodyIn):
    kind: Literal["openapi", "mcp"] = "openapi"
    url: ToolUrl  # the OpenAPI document, or the MCP server's streamable-HTTP endpoint
    operations: ToolWanted = Field(default_factory=list)  # ids or MCP tool names; none: all
    auth: SecretRef | None = None  # a team secret's name (admins)
    allow_changes: bool = False  # operations that change something may run
    name: ToolSetName | None = None  # default: from the host


class ToolAddedOut(BaseModel):
    tool: ToolSpec
    replaced: bool  # a tool of that name was replaced
    revision: int  # the draft's revision after the change


class ToolsOut(BaseModel):
    bot: str
    tools: list[ToolSpec]


@router.get("/bots/{bot}/tools", response_model=ToolsOut, responses=errors(401, 403, 404, 422))
async def list_tools(bot: str, who: Who, svc: Services) -> ToolsOut:
    """The draft's tools: each one's address, secret name, operations and what they may do."""
    name, tools = await svc.studio.tools.tools(who, bot)
    return ToolsOut(bot=name, tools=tools)


@router.post(
    "/bots/{bot}/tools",
    response_model=ToolAddedOut,
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 422, 501),
)
async def add_tool(bot: str, body: ToolIn, who: Who, svc: Services) -> ToolAddedOut:
    """Give the draft a tool (editors; with `auth`, admins): the service is read now; a
    document that does not parse, an unknown operation, a private address or a secret that is
    not set is a 422 that changes nothing."""
    added = await svc.studio.tools.add_tool(
        who,
        bot,
        kind=body.kind,
        url=body.url,
        wanted=body.operations,
        auth=body.auth,
        allow_changes=body.allow_changes,
        name=body.name,
    )
    return ToolAddedOut(tool=added.tool, replaced=added.replaced, revision=added.revision)


@router.delete(
    "/bots/{bot}/tools/{name}", status_code=204, responses=errors(401, 403, 404, 409, 422)
)
async def remove_tool(bot: str, name: ToolName, who: Who, svc: Services) -> Response:
    """Remove a tool from the draft (editors); 422 while a `tool` step still calls it."""
    await svc.studio.tools.remove_tool(who, bot, name)
    return Response(status_code=204)
