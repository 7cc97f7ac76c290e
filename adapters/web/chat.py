"""End users on the web: `POST /api/v1/chat/{id}`, its history, and the chat page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from adapters.web.deps import WebServices, refuse_nul, services
from adapters.web.error_docs import errors
from adapters.web.render import to_html
from runtime.messages import Address, IncomingMessage
from runtime.runtime import RESET_COMMAND, NotLiveError, UnknownDeploymentError
from storage import conversations as conv_store
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
    client = request.client.host if request.client else "unknown"
    if not svc.address_limiter.allow(client):
        raise RateLimitedError("too many messages from this address; wait a moment")
    session = body.session
    if not svc.sessions.valid(deployment_id, session):
        session = svc.sessions.issue(deployment_id)
    assert session is not None
    if not svc.session_limiter.allow(f"{deployment_id}:{session}"):
        raise RateLimitedError("too many messages in this conversation; wait a moment")
    address = Address(
        channel="web", deployment_id=deployment_id, conversation=session, user=f"web:{session[:12]}"
    )
    try:
        reply = await svc.runtime.answer(IncomingMessage(address=address, text=body.text))
    except NotLiveError:
        raise NotFoundError("this bot has no live version") from None
    if body.text.strip() == RESET_COMMAND:
        session = svc.sessions.issue(deployment_id)  # the old conversation has ended
    handoff = svc.runtime.handoffs.is_open(deployment_id, session)
    return ChatOut(session=session, reply=reply.text, html=to_html(reply.text), handoff=handoff)


class HistoryOut(BaseModel):
    greeting: str
    messages: list[dict[str, str]]
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
    try:
        greeting = await svc.runtime.greeting(deployment_id)
    except NotLiveError:
        raise NotFoundError("this bot has no live version") from None
    messages: list[dict[str, str]] = []
    total, handoff = 0, False
    if svc.sessions.valid(deployment_id, session):
        async with svc.runtime.db.read_conn() as conn:
            conversation = await conv_store.active_conversation(conn, deployment_id, session or "")
            if conversation is not None:
                rows = await conv_store.transcript(conn, conversation)
                total = len(rows)
                messages = [{"role": r, "text": t, "html": to_html(t)} for r, t in rows[after:]]
        handoff = svc.runtime.handoffs.is_open(deployment_id, session or "")
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
