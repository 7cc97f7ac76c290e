"""End users on the web: `POST /api/v1/chat/{id}`, its history, ratings of its answers, and the
chat page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from adapters.web.deps import WebServices, refuse_nul, services
from adapters.web.error_docs import errors
from adapters.web.render import to_html
from builders.spec import MAX_DB_INT
from runtime.feedback import Rating
from runtime.messages import Address, IncomingMessage
from runtime.runtime import RESET_COMMAND, NotLiveError, UnknownDeploymentError
from storage import conversations as conv_store
from storage import feedback as feedback_store
from studio.errors import NotFoundError, OperationError, TooLargeError

MAX_TEXT = 4000
_PAGE = (Path(__file__).parent / "static" / "chat.html").read_text()

router = APIRouter(responses=errors(400, 404, 413, 422, 429))
Services = Annotated[WebServices, Depends(services)]


class ChatIn(BaseModel):
    text: str = Field(min_length=1)
    session: str | None = None


class ChatOut(BaseModel):
    session: str
    reply: str  # empty while a person of the team has the conversation (the bot is silent)
    html: str
    # A person of the team has the conversation: their answers arrive by polling the history
    # (`after`), not in this response.
    handoff: bool = False
    # The answer's id, to rate it (`POST …/feedback`); None when the bot said nothing.
    message_id: int | None = None


class RateLimitedError(OperationError):
    status = 429


async def _web_deployment(svc: WebServices, deployment_id: str) -> None:
    try:
        target = await svc.runtime.target(deployment_id)
    except UnknownDeploymentError:
        raise NotFoundError(f"no deployment '{deployment_id}'") from None
    if target.channel != "web":
        raise NotFoundError(f"no web deployment '{deployment_id}'")


@router.post("/api/v1/chat/{deployment_id}", response_model=ChatOut, tags=["chat"])
async def chat(deployment_id: str, body: ChatIn, request: Request, svc: Services) -> ChatOut:
    """Send a message to a web deployment; the answer comes back with the session to reuse."""
    if len(body.text) > MAX_TEXT:
        raise TooLargeError(f"message too long: at most {MAX_TEXT} characters")
    refuse_nul(body.text)
    await _web_deployment(svc, deployment_id)
    _allow_address(svc, request)
    session = body.session
    if not svc.sessions.valid(deployment_id, session):
        session = svc.sessions.issue(deployment_id)
    assert session is not None
    _allow_session(svc, deployment_id, session)
    address = _address(deployment_id, session)
    try:
        reply = await svc.runtime.answer(IncomingMessage(address=address, text=body.text))
    except NotLiveError:
        raise NotFoundError("this bot has no live version") from None
    if body.text.strip() == RESET_COMMAND:
        session = svc.sessions.issue(deployment_id)  # the old conversation has ended
    handoff = svc.runtime.handoffs.is_open(deployment_id, session)
    return ChatOut(
        session=session,
        reply=reply.text,
        html=to_html(reply.text),
        handoff=handoff,
        message_id=reply.message_id if reply.messages else None,
    )


def _allow_address(svc: WebServices, request: Request) -> None:
    client = request.client.host if request.client else "unknown"
    if not svc.address_limiter.allow(client):
        raise RateLimitedError("too many messages from this address; wait a moment")


def _allow_session(svc: WebServices, deployment_id: str, session: str) -> None:
    if not svc.session_limiter.allow(f"{deployment_id}:{session}"):
        raise RateLimitedError("too many messages in this conversation; wait a moment")


def _end_user(session: str) -> str:
    """Who a web session's person is (their messages and ratings)."""
    return f"web:{session[:12]}"


def _address(deployment_id: str, session: str) -> Address:
    return Address(
        channel="web", deployment_id=deployment_id, conversation=session, user=_end_user(session)
    )


_RATINGS: dict[str, Rating] = {"up": 1, "down": -1, "none": 0}
Rated = Literal["up", "down"]
_RATED: dict[int, Rated] = {1: "up", -1: "down"}


class FeedbackIn(BaseModel):
    session: Annotated[str, Field(min_length=1, max_length=100)]
    message_id: Annotated[int, Field(ge=1, le=MAX_DB_INT)]
    rating: Literal["up", "down", "none"]  # none: take a rating back


@router.post(
    "/api/v1/chat/{deployment_id}/feedback",
    status_code=204,
    response_class=Response,
    tags=["chat"],
)
async def chat_feedback(
    deployment_id: str, body: FeedbackIn, request: Request, svc: Services
) -> Response:
    """Rate an answer of the session's conversation 👍 or 👎 (a later rating replaces it; `none`
    takes it back). 404 when the message is not an answer in that session's conversation on
    this deployment."""
    await _web_deployment(svc, deployment_id)
    _allow_address(svc, request)
    if not svc.sessions.valid(deployment_id, body.session):
        raise NotFoundError("no such answer in this conversation")
    _allow_session(svc, deployment_id, body.session)
    rated = await svc.runtime.ratings.by_answer(
        deployment_id=deployment_id,
        conversation=body.session,
        message_id=body.message_id,
        user=_end_user(body.session),
        channel="web",
        rating=_RATINGS[body.rating],
    )
    if not rated:
        raise NotFoundError("no such answer in this conversation")
    return Response(status_code=204)


class HistoryMessageOut(BaseModel):
    id: int
    role: str  # user, assistant, or human (a person of the team)
    text: str
    html: str
    rating: Rated | None = None  # this session's rating of an answer


class HistoryOut(BaseModel):
    greeting: str
    messages: list[HistoryMessageOut]
    total: int = 0  # messages in the conversation: ask again with `after=total`
    handoff: bool = False  # a person of the team has the conversation: ask again for answers


@router.get("/api/v1/chat/{deployment_id}/history", response_model=HistoryOut, tags=["chat"])
async def chat_history(
    deployment_id: str,
    svc: Services,
    session: str | None = None,
    after: Annotated[int, Query(ge=0)] = 0,
) -> HistoryOut:
    """The greeting and the messages of a session so far (the page shows them on reload), or
    those after the first `after` (the page polls while a person of the team answers: role
    `human`)."""
    await _web_deployment(svc, deployment_id)
    address = None  # a known session's person: their greeting is their A/B variant's
    if session is not None and svc.sessions.valid(deployment_id, session):
        address = _address(deployment_id, session)
    try:
        greeting = await svc.runtime.greeting(deployment_id, address=address)
    except NotLiveError:
        raise NotFoundError("this bot has no live version") from None
    messages: list[HistoryMessageOut] = []
    total, handoff = 0, False
    if address is not None:
        async with svc.runtime.db.read_conn() as conn:
            conversation = await conv_store.active_conversation(
                conn, deployment_id, address.conversation
            )
            if conversation is not None:
                rows = await feedback_store.rated_transcript(conn, conversation, user=address.user)
                total = len(rows)
                messages = [
                    HistoryMessageOut(
                        id=row.id,
                        role=row.role,
                        text=row.text,
                        html=to_html(row.text),
                        rating=_RATED.get(row.rating) if row.rating is not None else None,
                    )
                    for row in rows[after:]
                ]
        handoff = svc.runtime.handoffs.is_open(deployment_id, address.conversation)
    return HistoryOut(greeting=greeting, messages=messages, total=total, handoff=handoff)


@router.get("/chat/{deployment_id}", response_class=HTMLResponse, include_in_schema=False)
async def chat_page(deployment_id: str, svc: Services) -> HTMLResponse:
    """A small chat page with no build step; embed it with an iframe."""
    await _web_deployment(svc, deployment_id)
    name = await svc.runtime.bot_name(deployment_id)
    page = _PAGE.replace("{{BOT_NAME}}", html.escape(name)).replace(
        "{{DEPLOYMENT_ID}}", html.escape(deployment_id)
    )
    return HTMLResponse(page)
