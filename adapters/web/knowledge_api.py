"""A bot's knowledge over REST: `GET|POST|DELETE /api/v1/bots/{bot}/knowledge`, and
`POST /api/v1/bots/{bot}/knowledge/reindex` (its stored sources cut again, with keywords).

`POST` takes a file as the raw request body with its name in `?name=` (and its type in
`Content-Type`), which is what `python main.py knowledge add` sends; or JSON: `{"text": ...}` for
a note, `{"url": ...}` for a web page. A body over the size limit is refused (413) before it is
read whole.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError

from adapters.web.deps import BodyIn, WebServices, caller, services
from adapters.web.error_docs import API_ERRORS
from runtime.knowledge.extract import MAX_SOURCE_BYTES, format_size
from runtime.net import too_big
from studio.errors import BadRequestError, TooLargeError
from studio.roles import Caller, Role
from studio.views import Added, SourceView

UPLOAD_PATH = r"/api/v1/bots/[^/]+/knowledge"  # its body cap is the file limit, not the usual one

router = APIRouter(prefix="/api/v1", tags=["knowledge"], responses=API_ERRORS)
Who = Annotated[Caller, Depends(caller)]
Services = Annotated[WebServices, Depends(services)]


class ReindexedOut(BaseModel):
    sources: int
    chunks: int


class KnowledgeIn(BodyIn):
    text: str | None = Field(default=None, max_length=100_000)
    url: str | None = Field(default=None, max_length=2000)


@router.get("/bots/{bot}/knowledge", response_model=list[SourceView])
async def list_knowledge(bot: str, who: Who, svc: Services) -> list[SourceView]:
    return await svc.studio.knowledge.list(who, bot)


@router.post(
    "/bots/{bot}/knowledge",
    response_model=Added,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": KnowledgeIn.model_json_schema()},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def add_knowledge(
    bot: str,
    request: Request,
    who: Who,
    svc: Services,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Added:
    who.require(Role.EDITOR, "Adding knowledge")  # before the body is read
    knowledge = svc.studio.knowledge
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await _body(request, limit=200_000)
        try:
            given = KnowledgeIn.model_validate_json(body)
        except ValidationError:
            raise BadRequestError('send {"text": "..."} or {"url": "https://..."}') from None
        if bool(given.text) == bool(given.url):
            raise BadRequestError('send either {"text": "..."} or {"url": "https://..."}')
        if given.url:
            return await knowledge.add_url(who, bot, given.url)
        return await knowledge.add_text(who, bot, given.text or "")
    if name is None:
        raise BadRequestError("name the file: POST …/knowledge?name=refund-policy.pdf")
    content = await _body(request, limit=MAX_SOURCE_BYTES)
    return await knowledge.add_file(
        who, bot, name=name, content=content, content_type=content_type or None
    )


@router.post("/bots/{bot}/knowledge/reindex", response_model=ReindexedOut)
async def reindex_knowledge(bot: str, who: Who, svc: Services) -> ReindexedOut:
    done = await svc.studio.knowledge.reindex(who, bot)
    return ReindexedOut(sources=done.sources, chunks=done.chunks)


@router.delete("/bots/{bot}/knowledge", status_code=204)
async def remove_knowledge(
    bot: str,
    who: Who,
    svc: Services,
    name: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    await svc.studio.knowledge.remove(who, bot, name)
    return Response(status_code=204)


async def _body(request: Request, *, limit: int) -> bytes:
    """The request body, refused as soon as it is known to be over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(too_big("the body", int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"the body is over the limit of {format_size(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)
