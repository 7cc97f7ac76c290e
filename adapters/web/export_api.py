"""`GET /api/v1/bots/{bot}/export`: the bot's spec as YAML, or its real conversations of a
period as CSV or JSON, streamed (`studio.exports`: what `/export BOT` sends in chat)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from adapters.web.deps import WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from studio.exports import MEDIA_TYPES
from studio.operations import PERIODS
from studio.roles import Caller
from studio.views import Timestamp

router = APIRouter(prefix="/api/v1", tags=["bots"], responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
SPEC_FORMAT = "yaml"


class ExportedMessageOut(BaseModel):
    id: int
    at: Timestamp
    role: str  # user, assistant, or human (a person of the team, during a handoff)
    text: str
    version: int | None
    ab_test_id: int | None  # the live A/B test the answer was part of, and its variant
    variant: str | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    ratings_up: int
    ratings_down: int
    voice_s: float | None  # heard from a voice note this long (`text`: what it said)


class ExportedConversationOut(BaseModel):
    id: int
    channel: str
    user: str
    started_at: Timestamp
    messages: list[ExportedMessageOut]  # those of the period, oldest first


class ConversationsExportOut(BaseModel):
    """The JSON export (`format=json`); the CSV export has a row per message with the same
    fields (`conversation_id`, `channel`, `user`, `started_at`, `message_id`, `at`, ...)."""

    bot: str
    period: str
    since: Timestamp
    until: Timestamp
    conversations: list[ExportedConversationOut]


@router.get(
    "/bots/{bot}/export",
    response_class=Response,
    responses={
        200: {
            "model": ConversationsExportOut,
            "description": "The spec (YAML), or the conversations as a file (CSV or JSON)",
            "content": {
                "application/yaml": {"schema": {"$ref": "#/components/schemas/BotSpec"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
)
async def export_bot(
    bot: str,
    who: Who,
    svc: Services,
    format: Annotated[
        str,
        Query(
            description="yaml (the default): the bot's spec; csv or json: its conversations "
            "(admins)",
            json_schema_extra={"enum": [SPEC_FORMAT, *MEDIA_TYPES]},
        ),
    ] = SPEC_FORMAT,
    period: Annotated[
        str,
        Query(
            description="the conversations of the last 24h, 7d or 30d (csv and json)",
            json_schema_extra={"enum": list(PERIODS)},
        ),
    ] = "7d",
) -> Response:
    """The bot's draft spec as YAML; with `format=csv|json`, its real (not `/try`)
    conversations of `period` as a file, streamed a page at a time."""
    if format == SPEC_FORMAT:
        return Response(await svc.ops.export_bot(who, bot), media_type="application/yaml")
    exports = svc.studio.exports
    export = await exports.prepare(who, bot, format=format, period=period)
    return StreamingResponse(
        exports.chunks(export),
        media_type=export.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        },
    )
