"""The FastAPI application: routes, JSON errors, health and metrics.

The composition root (`main.py`) puts a `WebServices` on `app.state.services` in its lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.web import chat, rest
from studio.errors import OperationError

logger = logging.getLogger(__name__)

_ROOT_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Chat Studio</title></head><body style="font:16px system-ui;max-width:40em;margin:3em auto">
<h1>Chat Studio is running</h1>
<p>The web console, where you talk to the Studio in this page, is not available yet: it arrives
with the conversational Studio. Meanwhile everything works through the REST API
(<a href="/docs">interactive docs</a>, <a href="/openapi.json">OpenAPI</a>) with the key in
<code>data/local.key</code>, and deployed bots chat at <code>/chat/&lt;deployment id&gt;</code>.</p>
</body></html>"""


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def create_app(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Chat Studio",
        version="0.1.0",
        summary="Build, test, promote and run LLM chatbots.",
        lifespan=lifespan,
    )

    @app.exception_handler(OperationError)
    async def _operation_error(_: Request, exc: OperationError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(problems)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

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
        return HTMLResponse(_ROOT_PAGE)

    app.include_router(chat.router)  # first: end users' traffic is the hot path
    app.include_router(rest.router)
    return app
