"""Composing a turn's steps once, as middleware: each step gets the context and `call_next`, and
may act before and after the rest of the turn, or answer instead of it (a guardrail refusing).
The shape of aiogram's and Starlette's middleware; never a `next()` flag."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Protocol

from runtime.pipeline import TurnContext, TurnOutput

Handler = Callable[[TurnContext], Awaitable[TurnOutput]]


class Step(Protocol):
    """One cross-cutting concern of a turn (guardrails, budget, history, recording, metrics)."""

    async def __call__(self, ctx: TurnContext, call_next: Handler) -> TurnOutput: ...


def build_chain(steps: Sequence[Step], endpoint: Handler) -> Handler:
    """`steps[0]` runs first and `endpoint` (the pipeline) last; built once, run every turn."""
    handler = endpoint
    for step in reversed(steps):
        handler = partial(step, call_next=handler)
    return handler
