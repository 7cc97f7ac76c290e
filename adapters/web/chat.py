"""End users on the web: `POST /api/v1/chat/{id}`, its history, ratings of its answers, and the
chat page."""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from adapters.web.deps import BodyIn, WebServices, refuse_nul, services
from adapters.web.error_docs import errors
from adapters.web.render import to_html
from builders.spec import MAX_DB_INT
from runtime.feedback import Rating
from runtime.messages import Address, IncomingMessage, Reply
from runtime.runtime import RESET_COMMAND, NotLiveError, UnknownDeploymentError
from storage import conversations as conv_store
from storage import feedback as feedback_store
from studio.errors import NotFoundError, OperationError, TooLargeError

MAX_TEXT = 4000
SSE = "text/event-stream"
NOT_LIVE = "this bot has no live version"
logger = logging.getLogger(__name__)
_PAGE = (Path(__file__).parent / "static" / "chat.html").read_text()

router = APIRouter(responses=errors(400, 404, 413, 422, 429))
Services = Annotated[WebServices, Depends(services)]


class ChatIn(BodyIn):
    # blank is no message: refused, not answered "I only read text"
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
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


@router.post(
    "/api/v1/chat/{deployment_id}",
    response_model=ChatOut,
    tags=["chat"],
    responses={200: {"content": {SSE: {"schema": {"type": "string"}}}}},
)
async def chat(
    deployment_id: str, body: ChatIn, request: Request, svc: Services
) -> ChatOut | StreamingResponse:
    """Send a message to a web deployment; the answer comes back with the session to reuse.

    With `Accept: text/event-stream` the answer streams as server-sent events: `token` events
    (`{"text"}`, pieces of the answer as the model writes them), then one `done` event with
    this route's JSON answer (the whole reply, which replaces the pieces), or an `error` event
    (`{"error"}`). A client that leaves early does not stop the turn: it is answered and kept."""
    if len(body.text) > MAX_TEXT:
        raise TooLargeError(f"message too long: at most {MAX_TEXT} characters")
    refuse_nul(body.text)
    await _web_deployment(svc, deployment_id)
    _allow_address(svc, request)
    session = body.session
    if not svc.sessions.valid(deployment_id, session):
        session = svc.sessions.issue(deployment_id)
        svc.runtime.conversations.begin((deployment_id, session))
    assert session is not None
    _allow_session(svc, deployment_id, session)
    message = IncomingMessage(address=_address(deployment_id, session), text=body.text)
    if SSE in request.headers.get("accept", ""):
        return StreamingResponse(
            _events(svc, message, deployment_id, session),
            media_type=SSE,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    try:
        reply = await svc.runtime.answer(message)
    except NotLiveError:
        raise NotFoundError(NOT_LIVE) from None
    return _answered(svc, message, deployment_id, session, reply)


def _answered(
    svc: WebServices, message: IncomingMessage, deployment_id: str, session: str, reply: Reply
) -> ChatOut:
    if message.text.strip() == RESET_COMMAND:
        session = svc.sessions.issue(deployment_id)  # the old conversation has ended
    handoff = svc.runtime.handoffs.is_open(deployment_id, session)
    return ChatOut(
        session=session,
        reply=reply.text,
        html=to_html(reply.text),
        handoff=handoff,
        message_id=reply.message_id if reply.messages else None,
    )


async def _events(
    svc: WebServices, message: IncomingMessage, deployment_id: str, session: str
) -> AsyncIterator[str]:
    """The turn's server-sent events: its text as it is written, then the whole answer. The
    turn runs as the runtime's task, so a client that hangs up leaves it to finish."""
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    turn = svc.runtime.answer_streaming(message, pieces.put_nowait)
    turn.add_done_callback(lambda _: pieces.put_nowait(None))
    while (piece := await pieces.get()) is not None:
        yield _event("token", {"text": piece})
    try:
        reply = turn.result()
    except NotLiveError:
        yield _event("error", {"error": NOT_LIVE})
        return
    except Exception:
        logger.exception("a streamed web turn failed", extra={"deployment": deployment_id})
        yield _event("error", {"error": "Something went wrong on our side; please try again."})
        return
    yield _event("done", _answered(svc, message, deployment_id, session, reply).model_dump())


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


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


class FeedbackIn(BodyIn):
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
        raise NotFoundError(NOT_LIVE) from None
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
