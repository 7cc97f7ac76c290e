"""What every node kind shares: its `Params` model's base, reading params into it at save time
(a refusal is one line naming the step), and the usual way on (`next`)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from builders.spec import PipelineNode
from builders.validation import human_problems
from runtime.pipeline import CompileError, Usage

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
StepRef = Annotated[str, StringConstraints(min_length=1, max_length=40)]
NO_USAGE = Usage(0, 0, 0.0)
UNKNOWN_USAGE = Usage(None, None, None)  # a model call that failed: its cost is not known


class NodeParams(BaseModel):
    """A kind's params: unknown keys are refused, values are frozen once checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=NodeParams)


def step_error(step: str, problem: str) -> CompileError:
    return CompileError(f"step '{step}': {problem}")


def parse_params(model: type[P], definition: PipelineNode) -> P:
    """`definition.params` checked by `model`, or `CompileError` naming the step and the params."""
    try:
        return model.model_validate(definition.params)
    except ValidationError as exc:
        problems = human_problems(exc, root="params")
        raise step_error(definition.id, "; ".join(problems)) from None


def onward(next_step: str | None) -> tuple[tuple[str, str], ...]:
    """The successors of a step that goes on by `next` (none without one)."""
    return () if next_step is None else (("next", next_step),)
