"""What every request must respect before it reaches a route: a body cap, and no NUL character
in the path or query (PostgreSQL refuses NUL in text, so such a lookup would fail with a 500).

A declared `Content-Length` over the route's cap is answered 413 at once, before routing and
authentication, so no route ever reads such a body; a body without one (chunked) is counted as
it arrives and refused as soon as it passes the cap. Starlette's own limiter checks only when the
route reads the body, which is after authentication, and answers in plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.knowledge.extract import format_size
from runtime.net import too_big

MAX_BODY_BYTES = 1024 * 1024  # every route but those given their own cap

Refusal = Callable[[int, str], JSONResponse]  # (status, message) -> the answer


class _Refused(Exception):
    """Raised into the app when a streamed body passes its cap (the 413 is already sent)."""


def _refusal(status: int, message: str) -> JSONResponse:
    """In the service's error shape, `{"error": message}`."""
    # No `Connection: close`: after this answer uvicorn discards the rest of the body as it comes
    # (never buffering it) and keeps the connection, so a client that sends its whole body before
    # reading still gets the 413; closing with unread data would reset the connection under it.
    return JSONResponse({"error": message}, status_code=status)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RequestLimits:
    """`limits`: (path pattern, cap in bytes) for routes that take more than `default`;
    `shapes`: (path prefix, refusal) for routes whose errors have a shape of their own."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        limits: Sequence[tuple[str, int]] = (),
        shapes: Sequence[tuple[str, Refusal]] = (),
    ) -> None:
        self.app = app
        self.default = default
        self.limits = [(re.compile(pattern), cap) for pattern, cap in limits]
        self.shapes = shapes

    def _refused(self, scope: Scope, status: int, message: str) -> JSONResponse:
        path: str = scope["path"]
        shaped = (made for prefix, made in self.shapes if path.startswith(prefix))
        return next(shaped, _refusal)(status, message)

    def cap(self, path: str) -> int:
        for pattern, cap in self.limits:
            if pattern.fullmatch(path):
                return cap
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if b"%00" in (scope.get("raw_path") or b"") or b"%00" in scope["query_string"]:
            message = "the path or query holds a NUL character (%00)"
            await self._refused(scope, 400, message)(scope, receive, send)
            return
        cap = self.cap(scope["path"])
        declared = _content_length(scope)
        if declared is None:
            await self._counted(scope, receive, send, cap)
        elif declared > cap:
            message = too_big("the body", declared, cap)
            await self._refused(scope, 413, message)(scope, receive, send)
        else:  # the server delivers no more than the declared length
            await self.app(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    if not started:
                        refused = True
                        text = f"the body is over the limit of {format_size(cap)}"
                        await self._refused(scope, 413, text)(scope, receive, send)
                    raise _Refused
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused:  # whatever the app makes of the interruption goes nowhere
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, send_unless_refused)
        except _Refused:
            if not refused:  # the app had already started its answer: the server ends it
                raise
