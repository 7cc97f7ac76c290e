"""A turn's trace: what each step of the pipeline did, kept with the turn's answer.

The pipeline appends one `StepTrace` per step it runs (its time, tokens, cost, error, where it
went, the tools it called and what the step itself tells: the router's branch, the passages and
their scores, the prompt's size). `trace_record` makes the JSON the answer's message keeps, so a
trace lives and is deleted with its turn. Reading it back is `TurnTrace.model_validate`.

The recording is cheap on purpose (a few attribute reads and one small dict per step): every live
turn pays for it. The `trace_overhead_ms` bench measures it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from runtime.pipeline import TurnContext, TurnOutput
    from runtime.tools.base import ToolCallRecord

TRACE_VERSION = 1
MAX_DETAIL_CHARS = 200  # a string a step tells (a snippet, a reason) is cut here


@dataclass(frozen=True, slots=True)
class StepTrace:
    """One step as it ran: `at_ms` from the turn's start; `detail` what the step kind tells."""

    id: str
    kind: str
    at_ms: float
    ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    next: str | None
    detail: Mapping[str, Any] | None
    tools: tuple[ToolCallRecord, ...]


def clock() -> float:
    """The monotonic clock steps and tool calls are timed with (seconds)."""
    return time.perf_counter()


def tool_outcome(call: ToolCallRecord) -> str:
    """What a trace (and a span) says of a call's outcome beyond its status: the HTTP status
    only. A refusal's reason can repeat the model's arguments, which come from what the end user
    said: those stay in the stored answer, for those who may read the conversation."""
    return call.detail if call.detail.startswith("HTTP ") else ""


def cut(text: str) -> str:
    return text if len(text) <= MAX_DETAIL_CHARS else text[: MAX_DETAIL_CHARS - 1] + "…"


def trace_record(output: TurnOutput, ctx: TurnContext) -> dict[str, Any] | None:
    """The trace as the answer's message keeps it (None: no step ran, e.g. a guard answered)."""
    if not output.steps:
        return None
    return {
        "v": TRACE_VERSION,
        "model": ctx.spec.model,
        "steps": [_step(step, ctx.started) for step in output.steps],
    }


def _step(step: StepTrace, started: float) -> dict[str, Any]:
    kept: dict[str, Any] = {
        "id": step.id,
        "kind": step.kind,
        "at_ms": round(step.at_ms, 2),
        "ms": round(step.ms, 2),
    }
    if step.prompt_tokens or step.completion_tokens:
        kept["prompt_tokens"] = step.prompt_tokens
        kept["completion_tokens"] = step.completion_tokens
    if step.cost_usd:
        kept["cost_usd"] = step.cost_usd
    elif step.cost_usd is None:
        kept["cost_usd"] = None  # unknown, never shown as 0
    if step.error:
        kept["error"] = step.error
    if step.next:
        kept["next"] = step.next
    if step.detail:
        kept["detail"] = dict(step.detail)
    if step.tools:
        kept["tools"] = [
            {
                "at_ms": round((call.started - started) * 1000, 2),
                "function": call.function,
                "status": call.status,
                "ms": call.ms,
                "size": call.size,
                "detail": tool_outcome(call),
            }
            for call in step.tools
        ]
    return kept


# -- reading a kept trace back ------------------------------------------------------------------


class ToolTrace(BaseModel):
    model_config = ConfigDict(frozen=True)

    at_ms: float = 0.0
    function: str
    status: str
    ms: float
    size: int
    detail: str = ""


class StepView(BaseModel):
    """One step of a kept trace (`detail` as its kind tells it: see each node's `trace`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    at_ms: float
    ms: float
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    cost_usd: float | None = 0.0
    error: str | None = None
    next: str | None = None
    detail: dict[str, Any] = {}
    tools: list[ToolTrace] = []


class TurnTrace(BaseModel):
    model_config = ConfigDict(frozen=True)

    v: int = TRACE_VERSION
    model: str | None = None
    steps: list[StepView] = []
