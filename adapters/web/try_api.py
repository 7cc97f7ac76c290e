"""`POST /api/v1/bots/{bot}/try`: the Studio's `/try` over REST.

The caller's sandbox conversation with the bot's draft is the one `/try` uses for the same member
(an API key's member is `api:NAME`), so either front continues it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, StringConstraints

from adapters.web.deps import BodyIn, WebServices, caller, refuse_nul, services
from adapters.web.error_docs import errors
from studio.commands import MAX_INPUT_CHARS
from studio.roles import Caller

router = APIRouter(prefix="/api/v1", tags=["bots"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class TryIn(BodyIn):
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_INPUT_CHARS)
    ]
    new: bool = False  # start a new sandbox conversation with this message


class ToolCallOut(BaseModel):
    function: str
    arguments: str  # as JSON, secrets masked
    status: str  # ok, error, timeout, unreachable, too_large, refused
    ms: float
    size: int  # bytes received
    detail: str  # the HTTP status or the reason


class TryOut(BaseModel):
    bot: str
    reply: str  # what end users would get
    model_error: str | None  # why the model failed, when it did (`reply` is then the fallback)
    new_conversation: bool  # this message started a sandbox conversation
    tool_calls: list[ToolCallOut]  # the tools the turn called, in order


@router.post("/bots/{bot}/try", response_model=TryOut, responses=errors(400, 401, 403, 404, 422))
async def try_draft(bot: str, body: TryIn, who: Who, svc: Services) -> TryOut:
    """Say something to the bot's draft in your own sandbox conversation (editors and up;
    never counted in stats)."""
    refuse_nul(body.text)
    tried = await svc.studio.sandbox.try_draft(who, bot, body.text, new=body.new)
    assert tried.turn is not None  # there was text
    output = tried.turn.output
    return TryOut(
        bot=tried.bot,
        reply=output.reply,
        model_error=output.error,
        new_conversation=tried.turn.fresh,
        tool_calls=[
            ToolCallOut(
                function=r.function,
                arguments=r.arguments,
                status=r.status,
                ms=r.ms,
                size=r.size,
                detail=r.detail,
            )
            for r in output.tool_calls
        ],
    )
