"""What both Telegram sides (the Studio's bot and the generated bots) share: reading a webhook
delivery, error texts without tokens, and logging a background task that died."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastapi import Request

from studio.secrets import redact_tokens

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def said(exc: BaseException) -> str:
    """What Telegram (or the network) said, without the token the libraries put in URLs."""
    return redact_tokens(str(getattr(exc, "message", exc)))


async def delivery(request: Request) -> tuple[str, dict[str, Any] | None]:
    """A webhook post: its secret header and its update (None: not a JSON object)."""
    secret = request.headers.get(SECRET_HEADER, "")
    try:
        update = await request.json()
    except ValueError:
        return secret, None
    return secret, update if isinstance(update, dict) else None


def log_failure(logger: logging.Logger, what: str) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback that logs `what` with the exception of a task that failed."""

    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(what, exc_info=task.exception())

    return report
