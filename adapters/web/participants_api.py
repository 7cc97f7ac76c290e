"""Participant memory over REST: what a bot remembers about one end user, changed or forgotten,
and a person forgotten everywhere (`/memory` in chat; `studio.participants` decides).

`{user}` names an end user as in chat: `CHANNEL:ID` (`telegram:12345`), `sandbox:IDENTITY` (a
member's `/try` conversations), or a bare `ID` on every channel.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi import Path as PathParam
from pydantic import Field

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import errors
from studio.participants import MAX_USER_CHARS, ChannelMemory, ForgottenView, ParticipantView
from studio.roles import Caller

router = APIRouter(prefix="/api/v1", tags=["participants"])
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]
User = Annotated[str, PathParam(min_length=1, max_length=MAX_USER_CHARS)]
_PATH = "/bots/{bot}/participants/{user}"


class ValueIn(BodyIn):
    value: bool | int | Annotated[float, Field(allow_inf_nan=False)] | str


@router.get(_PATH, response_model=ParticipantView, responses=errors(401, 403, 404, 422))
async def participant_memory(bot: str, user: User, who: Who, svc: Services) -> ParticipantView:
    """What the bot remembers about the end user, per channel (editors and up): `memory` is
    empty when the bot knows the person but remembers nothing; 404 when no such end user has
    talked to the bot."""
    return await svc.studio.participants.memory(who, bot, user)


@router.put(
    _PATH + "/memory/{key}",
    response_model=ChannelMemory,
    responses=errors(400, 401, 403, 404, 413, 422),
)
async def set_memory(
    bot: str, user: User, key: str, body: ValueIn, who: Who, svc: Services
) -> ChannelMemory:
    """Remember `value` under `key` (1-40 of a-z, 0-9 and '_', starting with a letter) about
    the end user (editors and up). The channel is the one `CHANNEL:ID` names; a bare `ID` is
    enough only when the bot knows the person on one channel (else 422 names the choices).
    Answers with everything remembered on that channel."""
    return await svc.studio.participants.set_memory(who, bot, user, key, body.value)


@router.delete(_PATH + "/memory", status_code=204, responses=errors(401, 403, 404, 422))
async def forget_memory(bot: str, user: User, who: Who, svc: Services) -> Response:
    """Forget what the bot remembers about the end user (editors and up); their conversations
    and messages stay."""
    await svc.studio.participants.forget_memory(who, bot, user)
    return Response(status_code=204)


@router.delete(_PATH, response_model=ForgottenView, responses=errors(401, 403, 404, 422))
async def forget_participant(bot: str, user: User, who: Who, svc: Services) -> ForgottenView:
    """Forget the end user everywhere for this bot (admins and owners): their memory, and
    every conversation they held with it (a member's `/try` conversations when `user` is that
    member's identity) with its messages. Answers with how much went."""
    return await svc.studio.participants.forget_participant(who, bot, user)
