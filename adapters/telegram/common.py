"""What both Telegram sides (the Studio's bot and the generated bots) share: the polling loop
that confirms a batch only once it is recorded, reading a webhook delivery, error texts without
tokens, and logging a background task that died."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import Request

from runtime.cipher import redact_tokens

SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_POLL_PAUSE_S = 30.0
_Errors = type[BaseException] | tuple[type[BaseException], ...]


async def poll_updates(
    fetch: Callable[[int | None], Awaitable[Sequence[Any]]],
    record: Callable[[Any], Awaitable[None]],
    *,
    refused: _Errors,
    failed: _Errors,
    logger: logging.Logger,
    extra: dict[str, str] | None = None,
) -> None:
    """getUpdates (`fetch(offset)`), record each update, and only then confirm the batch with
    the next offset: aiogram's and python-telegram-bot's pollers confirm before their handlers
    finish, which loses updates on a crash. A batch that could not be recorded comes back (the
    inbox dedupes it). Returns when Telegram refuses the token (`refused`); `failed` errors are
    retried with a growing pause."""
    offset: int | None = None
    pause = 1.0
    while True:
        try:
            updates = await fetch(offset)
        except refused:
            return
        except failed as exc:
            logger.warning("getUpdates failed: %s", said(exc), extra=extra)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_POLL_PAUSE_S)
            continue
        pause = 1.0
        try:
            for update in updates:
                await record(update)
        except Exception:
            logger.exception("recording updates failed", extra=extra)
            await asyncio.sleep(pause)
            continue
        if updates:
            offset = updates[-1].update_id + 1


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
