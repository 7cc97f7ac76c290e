"""The REST API: every Studio operation, acting with the role of the caller's API key."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

import yaml
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from builders.spec import MAX_DB_INT
from studio.errors import BadRequestError
from studio.roles import Caller
from studio.stats_chart import stats_chart
from studio.views import (
    AuditView,
    BotListItem,
    BotView,
    ConversationMessages,
    ConversationView,
    DeploymentView,
    DiffView,
    MemberView,
    PromoteResult,
    StatsView,
    VersionView,
)

NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL in text

router = APIRouter(prefix="/api/v1", responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class CreateBot(BodyIn):
    name: str
    description: str = ""


class PromoteIn(BodyIn):
    to: Literal["staging", "production"] = "staging"
    force: bool = False


class RollbackIn(BodyIn):
    env: Literal["staging", "production"]
    version: int | None = Field(default=None, ge=1, le=MAX_DB_INT)


class DeployIn(BaseModel):
    """Besides these, the secrets and options the channel takes (WhatsApp: `app_secret`,
    `template`), each a string."""

    model_config = ConfigDict(extra="allow")
    channel: str = Field(max_length=16, pattern=NO_NUL)
    env: Literal["staging", "production"] = "production"
    target: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    token: str | None = Field(default=None, max_length=400, pattern=NO_NUL)

    @model_validator(mode="after")
    def _strings(self) -> DeployIn:
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, str) or len(value) > 400 or "\x00" in value:
                raise ValueError(f"{name} must be a string of at most 400 characters")
        return self

    def given(self) -> dict[str, str]:
        return {name: str(value) for name, value in (self.model_extra or {}).items()}


class DeployOut(BaseModel):
    """Besides these, what to copy into the platform (WhatsApp: `webhook_url`,
    `verify_token`)."""

    model_config = ConfigDict(extra="allow")
    id: str
    url: str | None


@router.get("/bots", response_model=list[BotListItem], tags=["bots"])
async def list_bots(who: Who, svc: Services) -> list[BotListItem]:
    return await svc.ops.list_bots(who)


@router.post("/bots", response_model=BotView, status_code=201, tags=["bots"])
async def create_bot(body: CreateBot, who: Who, svc: Services) -> BotView:
    return await svc.ops.create_bot(who, body.name, body.description)


@router.post(
    "/bots/import",
    response_model=BotView,
    status_code=201,
    tags=["bots"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_bot(request: Request, who: Who, svc: Services, replace: bool = False) -> BotView:
    """A YAML body (any text type) or a JSON spec (`application/json`)."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("the spec must be UTF-8 text") from None
    as_json = request.headers.get("content-type", "").startswith("application/json")
    data = await asyncio.to_thread(_document, text, as_json=as_json)
    # Anything but a mapping goes as text: the Studio names what is wrong with it.
    return await svc.ops.import_bot(who, data if isinstance(data, dict) else text, replace=replace)


def _document(text: str, *, as_json: bool) -> Any:
    """The body as data, parsed off the event loop (a megabyte of YAML takes about a second).
    Malformed YAML gives None, and the Studio's own parse of the text names the line."""
    try:
        return json.loads(text) if as_json else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except yaml.YAMLError:
        return None
    except RecursionError:
        raise BadRequestError("the spec is nested too deeply") from None


@router.get("/bots/{bot}", response_model=BotView, tags=["bots"])
async def get_bot(bot: str, who: Who, svc: Services) -> BotView:
    return await svc.ops.get_bot(who, bot)


@router.patch("/bots/{bot}", response_model=BotView, tags=["bots"])
async def edit_bot(bot: str, body: dict[str, Any], who: Who, svc: Services) -> BotView:
    """Edit draft fields; include `revision` to refuse the edit (409) if the draft changed."""
    changes = dict(body)
    revision = changes.pop("revision", None)
    if revision is not None and (type(revision) is not int or not 0 <= revision <= MAX_DB_INT):
        raise BadRequestError(f"revision must be a whole number from 0 to {MAX_DB_INT}")
    return await svc.ops.edit_draft(who, bot, changes, revision=revision)


@router.delete("/bots/{bot}", status_code=204, tags=["bots"])
async def delete_bot(bot: str, who: Who, svc: Services) -> Response:
    await svc.ops.delete_bot(who, bot)
    return Response(status_code=204)


@router.get("/bots/{bot}/versions", response_model=list[VersionView], tags=["versions"])
async def versions(bot: str, who: Who, svc: Services) -> list[VersionView]:
    return await svc.ops.versions(who, bot)


@router.get("/bots/{bot}/diff", response_model=DiffView, tags=["versions"])
async def diff(
    bot: str, who: Who, svc: Services, a: str | None = None, b: str | None = None
) -> DiffView:
    return await svc.ops.diff(who, bot, before=a, after=b)


@router.get("/bots/{bot}/history", response_model=list[AuditView], tags=["versions"])
async def history(bot: str, who: Who, svc: Services) -> list[AuditView]:
    return await svc.ops.history(who, bot)


@router.post("/bots/{bot}/promote", response_model=PromoteResult, tags=["versions"])
async def promote(bot: str, body: PromoteIn, who: Who, svc: Services) -> PromoteResult:
    """To staging, a draft with tests and no run of exactly this draft runs them first: the
    answer comes after the run, 409 naming the failing cases when one fails."""
    return await svc.studio.tests.promote(who, bot, to=body.to, force=body.force)


@router.post("/bots/{bot}/rollback", response_model=PromoteResult, tags=["versions"])
async def rollback(bot: str, body: RollbackIn, who: Who, svc: Services) -> PromoteResult:
    return await svc.ops.rollback(who, bot, env=body.env, version=body.version)


@router.post(
    "/bots/{bot}/deployments",
    response_model=DeployOut,
    status_code=201,
    tags=["deploy"],
)
async def deploy(bot: str, body: DeployIn, who: Who, svc: Services) -> DeployOut:
    view = await svc.ops.deploy(
        who,
        bot,
        channel=body.channel,
        env=body.env,
        target=body.target,
        token=body.token,
        options=body.given(),
    )
    return DeployOut(id=view.id, url=view.url, **view.details)


@router.get("/deployments", response_model=list[DeploymentView], tags=["deploy"])
async def deployments(who: Who, svc: Services, bot: str | None = None) -> list[DeploymentView]:
    return await svc.ops.deployments(who, bot)


@router.delete("/deployments/{deployment_id}", status_code=204, tags=["deploy"])
async def undeploy(deployment_id: str, who: Who, svc: Services) -> Response:
    await svc.ops.undeploy(who, deployment_id)
    return Response(status_code=204)


@router.get("/bots/{bot}/stats", response_model=StatsView, tags=["insight"])
async def stats(
    bot: str, who: Who, svc: Services, period: Annotated[str, Query()] = "7d"
) -> StatsView:
    return (await svc.ops.stats(who, bot, period))[0]


@router.get(
    "/bots/{bot}/stats/chart.png",
    response_class=Response,
    tags=["insight"],
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def stats_chart_png(
    bot: str, who: Who, svc: Services, period: Annotated[str, Query()] = "7d"
) -> Response:
    """`/stats BOT`'s chart; a period without traffic is a picture that says so."""
    png = await stats_chart(await svc.ops.stats_series(who, bot, period))
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/stats", response_model=list[StatsView], tags=["insight"])
async def team_stats(
    who: Who, svc: Services, period: Annotated[str, Query()] = "7d"
) -> list[StatsView]:
    return await svc.ops.stats(who, None, period)


@router.get("/bots/{bot}/conversations", response_model=list[ConversationView], tags=["insight"])
async def conversations(bot: str, who: Who, svc: Services) -> list[ConversationView]:
    return await svc.ops.conversations(who, bot)


@router.get(
    "/bots/{bot}/conversations/{conversation_id}",
    response_model=ConversationMessages,
    tags=["insight"],
)
async def conversation(
    bot: str,
    conversation_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
    who: Who,
    svc: Services,
    after: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> ConversationMessages:
    """One conversation's messages, oldest first (`after` = the last id seen pages on)."""
    return await svc.ops.conversation(who, bot, conversation_id, after=after, limit=limit)


@router.get("/audit", response_model=list[AuditView], tags=["insight"])
async def audit(
    who: Who, svc: Services, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditView]:
    return await svc.ops.audit(who, limit=limit)


@router.get("/members", response_model=list[MemberView], tags=["team"])
async def members(who: Who, svc: Services) -> list[MemberView]:
    return await svc.ops.members(who)
