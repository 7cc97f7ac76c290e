"""Background tasks a service keeps (test runs, evaluation runs, judging workers)."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from typing import Any


async def settle(tasks: Set[asyncio.Task[Any]], *, grace_s: float | None = None) -> None:
    """Wait until `tasks` (a live set: tasks remove themselves when done) is empty; with
    `grace_s` (shutdown), cancel those still running after it."""
    if grace_s is not None and tasks:
        _, running = await asyncio.wait(set(tasks), timeout=grace_s)
        for task in running:
            task.cancel()
    while tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
