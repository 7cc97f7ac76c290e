"""Turn traces over REST: the same as `/trace BOT` in chat (`studio.traces`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from adapters.web.deps import WebServices, caller, services
from adapters.web.error_docs import errors
from builders.spec import MAX_DB_INT
from runtime.trace import StepView
from studio.roles import Caller
from studio.traces import parsed
from studio.views import Timestamp

router = APIRouter(prefix="/api/v1", tags=["insight"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
MAX_TRACES = 100


class TracedTurnOut(BaseModel):
    message_id: int  # the answer's (what feedback and /review name)
    conversation_id: int
    channel: str  # `sandbox`: the caller's own /try conversation
    at: Timestamp
    user_message: str | None  # as stored: masked when the bot's PII guard is on
    answer: str
    version: int | None  # None: the draft (/try)
    variant: str | None  # "A" or "B" during a live A/B test
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None  # None: unknown, never 0
    error: str | None  # "blocked: NAME" when a guard answered
    model: str | None  # the bot's model for this turn
    steps: list[StepView]  # empty: no step ran (a guard answered), or kept before traces were


class TracesOut(BaseModel):
    bot: str
    conversation: int | None
    turns: list[TracedTurnOut]  # newest first


@router.get("/bots/{bot}/traces", response_model=TracesOut, responses=errors(401, 403, 404, 422))
async def traces(
    bot: str,
    who: Who,
    svc: Services,
    conversation: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_TRACES)] = 20,
) -> TracesOut:
    """The bot's latest answers with what each step did (the router's branch and why, passages
    and scores, the prompt's size, model and tool calls, tokens, cost, errors), newest first:
    in real conversations and the caller's own /try sandbox, or in one `conversation` (404: not
    one of the bot's answered conversations the caller may see). Viewers may read."""
    found = await svc.studio.traces.traces(who, bot, conversation=conversation, limit=limit)
    turns = []
    for turn in found.turns:
        trace = parsed(turn)
        turns.append(
            TracedTurnOut(
                message_id=turn.message_id,
                conversation_id=turn.conversation_id,
                channel=turn.channel,
                at=turn.created_at,
                user_message=turn.said,
                answer=turn.reply,
                version=turn.version,
                variant=turn.variant,
                latency_ms=turn.latency_ms,
                prompt_tokens=turn.prompt_tokens,
                completion_tokens=turn.completion_tokens,
                cost_usd=turn.cost_usd,
                error=turn.error,
                model=trace.model if trace else None,
                steps=trace.steps if trace else [],
            )
        )
    return TracesOut(bot=found.bot, conversation=found.conversation, turns=turns)
