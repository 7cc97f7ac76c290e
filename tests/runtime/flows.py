"""Building pipelines and running turns through them by hand, for the node and graph tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from builders.spec import OFFLINE_MODEL, BotSpec
from runtime.llm import ChatMessage, LlmGateway, RetryPolicy
from runtime.participant import ParticipantMemory, Scalar
from runtime.pipeline import CompiledBot, CompileError, TurnContext, TurnOutput, compile_spec
from tests.fakes.llm import FakeLLM

MODEL = "openai/fake-model"
Step = dict[str, Any]


def gateway(fake: FakeLLM | None = None) -> LlmGateway:
    """The real gateway: to the fake server when given (one attempt, no backoff), else for
    `offline` only (any other model would fail to connect)."""

    async def no_sleep(_delay: float) -> None:
        return None

    policy = RetryPolicy(attempts=1, attempt_timeout_s=2.0, deadline_s=4.0, backoff_s=0.01)
    return LlmGateway(api_base=fake.base_url if fake else None, policy=policy, sleep=no_sleep)


def step(step_id: str, kind: str, next_step: str | None = None, **params: Any) -> Step:
    definition: Step = {"id": step_id, "kind": kind, "params": params}
    if next_step is not None:
        definition["next"] = next_step
    return definition


def says(step_id: str, text: str, next_step: str | None = None) -> Step:
    """A template step that answers `text` (which may use the template's names)."""
    return step(step_id, "template", next_step, text=text)


def router(*routes: Step, default: str = "other", step_id: str = "triage", **params: Any) -> Step:
    return step(step_id, "router", routes=list(routes), default=default, **params)


def spec(*steps: Step, model: str = OFFLINE_MODEL, **fields: Any) -> BotSpec:
    return BotSpec.model_validate(
        {"name": "flow-bot", "model": model, "pipeline": list(steps), **fields}
    )


def compiled(*steps: Step, model: str = OFFLINE_MODEL, **fields: Any) -> CompiledBot:
    return compile_spec(spec(*steps, model=model, **fields))


def refusal(*steps: Step, model: str = OFFLINE_MODEL, **fields: Any) -> str:
    """The one-line reason the pipeline is refused at save."""
    with pytest.raises(CompileError) as caught:
        compiled(*steps, model=model, **fields)
    message = str(caught.value)
    assert "\n" not in message
    return message


def context(
    bot: CompiledBot,
    text: str,
    *,
    llm: LlmGateway | None = None,
    memory: dict[str, Scalar] | None = None,
    history: Sequence[ChatMessage] = (),
    **fields: Any,
) -> TurnContext:
    return TurnContext(
        spec=bot.spec,
        text=text,
        history=list(history),
        llm=llm or gateway(),
        participant=ParticipantMemory(values=dict(memory or {})),
        **fields,
    )


async def turn(bot: CompiledBot, text: str, **options: Any) -> tuple[TurnOutput, TurnContext]:
    ctx = context(bot, text, **options)
    return await bot.run(ctx), ctx
