"""The FastAPI application: routes, JSON errors, health and metrics.

The composition root (`main.py`) puts a `WebServices` on `app.state.services` in its lifespan.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.web import (
    abtest_api,
    chat,
    datasets_api,
    evals_api,
    export_api,
    flow_api,
    keys_api,
    knowledge_api,
    members_api,
    openai_api,
    participants_api,
    readiness,
    rest,
    review_api,
    schedules_api,
    secrets_api,
    studio_api,
    tools_api,
    traces_api,
    try_api,
)
from adapters.web.deps import malformed_json
from adapters.web.request_limits import MAX_BODY_BYTES, RequestLimits
from runtime.knowledge.extract import MAX_SOURCE_BYTES
from studio.errors import OperationError

logger = logging.getLogger(__name__)

_CONSOLE_PAGE = (Path(__file__).parent / "static" / "console.html").read_text()


def _console_headers(page: str) -> dict[str, str]:
    """A strict policy for the page that holds a team key: only its own inline script runs
    (pinned by hash), it talks only to this origin, and no other site may frame it."""
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    )
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


_CONSOLE_HEADERS = _console_headers(_CONSOLE_PAGE)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_app(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    *,
    channel_routes: Sequence[APIRouter] = (),
    body_limits: Sequence[tuple[str, int]] = (),
) -> FastAPI:
    """The web app, with the channels' inbound routes (`channel_routes`, matched right after
    the web chat's and the OpenAI-compatible API's: end users' traffic first); `body_limits`
    (path pattern, bytes) raise the body cap of routes that take more (a channel's webhook)."""
    app = FastAPI(
        title="Chat Studio",
        version="0.1.0",
        summary="Build, test, promote and run LLM chatbots.",
        lifespan=lifespan,
    )
    app.add_middleware(
        RequestLimits,
        default=MAX_BODY_BYTES,
        limits=[(knowledge_api.UPLOAD_PATH, MAX_SOURCE_BYTES), *body_limits],
        shapes=[(openai_api.PREFIX, openai_api.refusal)],
    )

    @app.exception_handler(OperationError)
    async def _operation_error(_: Request, exc: OperationError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        if (malformed := malformed_json(exc)) is not None:
            return JSONResponse({"error": malformed}, status_code=400)
        problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith(openai_api.PREFIX):  # no route of it took the request
            return openai_api.unserved(request, exc)
        detail = str(exc.detail)
        if isinstance(exc.__cause__, RecursionError):  # FastAPI's parse of a body nested too deep
            detail = "malformed JSON: nested too deeply"
        return JSONResponse({"error": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the service logged it"}, status_code=500)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def root() -> HTMLResponse:
        """The web console: talk to the Studio in the browser with a team API key."""
        return HTMLResponse(_CONSOLE_PAGE, headers=_CONSOLE_HEADERS)

    # End users' traffic first: it is the hot path, and routes are matched one by one in order.
    app.include_router(chat.router)
    app.include_router(openai_api.router)  # bots as OpenAI-compatible APIs
    for routes in channel_routes:
        app.include_router(routes)
    # Before any `/bots/{bot}/evals/{id}` route: its fixed paths (`evals/online`) must win.
    app.include_router(review_api.router)
    app.include_router(rest.router)
    app.include_router(export_api.router)
    app.include_router(studio_api.router)
    app.include_router(knowledge_api.router)
    app.include_router(try_api.router)
    app.include_router(keys_api.router)
    app.include_router(members_api.router)
    app.include_router(participants_api.router)
    app.include_router(readiness.router)
    app.include_router(flow_api.router)
    app.include_router(secrets_api.router)
    app.include_router(traces_api.router)
    app.include_router(tools_api.router)
    app.include_router(schedules_api.router)
    app.include_router(evals_api.router)
    app.include_router(datasets_api.router)
    app.include_router(abtest_api.router)
    return app
