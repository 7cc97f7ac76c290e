"""`runtime.handoff` without a service: the spec's target, the step's checks, the model's tool
definition, and a handoff in `/try` and tests (nobody is asked)."""

from __future__ import annotations

from typing import Any

import pytest

from builders.spec import BotSpec, PipelineNode
from builders.validation import SpecError, parse_spec
from runtime.handoff import DEFAULT_MESSAGE, handoff_definition, start_handoff
from runtime.llm import LlmGateway
from runtime.pipeline import CompileError, TurnContext, compile_spec

SUPPORT = {"channel": "slack", "target": "C0001", "name": "#support"}


def spec(handoff: dict[str, Any] | None = SUPPORT, **fields: Any) -> BotSpec:
    return BotSpec.model_validate({"name": "faq-bot", "handoff": handoff, **fields})


@pytest.mark.parametrize(
    ("handoff", "problem"),
    [
        ({**SUPPORT, "target": "#support"}, "target '#support' is not a room's id"),
        ({**SUPPORT, "timeout_minutes": 0}, "handoff.timeout_minutes: must be at least 1"),
        ({**SUPPORT, "channel": "E-mail"}, "handoff.channel"),
    ],
)
def test_a_bad_target_is_refused(handoff: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_spec({"name": "faq-bot", "handoff": handoff})


def test_an_unset_handoff_keeps_the_content_hash() -> None:
    assert spec(None).content_hash() == BotSpec(name="faq-bot").content_hash()
    assert "handoff" not in spec(None).model_dump(mode="json")
    assert spec().content_hash() != spec(None).content_hash()


def test_the_step_needs_a_target_and_ends_the_turn() -> None:
    human = PipelineNode(id="human", kind="handoff")
    with pytest.raises(CompileError, match="step 'human': a handoff step needs somewhere"):
        compile_spec(spec(None, pipeline=[human]))
    onward = [human.model_copy(update={"next": "llm"}), PipelineNode(id="llm", kind="llm")]
    with pytest.raises(CompileError, match="ends the turn, so it cannot go on to 'llm'"):
        compile_spec(spec(pipeline=onward))
    with pytest.raises(CompileError, match="step 'human': colour: unknown field"):
        compile_spec(spec(pipeline=[human.model_copy(update={"params": {"colour": 1}})]))


def test_the_model_is_offered_the_tool_only_when_on() -> None:
    assert handoff_definition(spec(None)) is None
    assert handoff_definition(spec({**SUPPORT, "tool": False})) is None
    offered = handoff_definition(spec())
    assert offered is not None and offered["function"]["name"] == "handoff"
    assert offered["function"]["parameters"]["required"] == ["reason"]


def context(bot: BotSpec, mode: Any) -> TurnContext:
    return TurnContext(spec=bot, text="a human please", history=[], llm=LlmGateway(), mode=mode)


async def test_in_try_and_tests_nobody_is_asked() -> None:
    bot = compile_spec(spec(pipeline=[{"id": "human", "kind": "handoff"}]))  # type: ignore[list-item]
    for mode in ("try", "test"):
        output = await bot.run(context(bot.spec, mode))
        assert (output.reply, output.handed_over, output.error) == (
            DEFAULT_MESSAGE,
            "#support",
            None,
        )


async def test_live_without_a_way_to_the_team_the_end_user_gets_the_fallback() -> None:
    live = context(spec(), "live")
    result = await start_handoff(live, reason="asked for a person")
    assert result.reply == live.spec.fallback
    assert result.error == (
        "handoff: a message the bot sends unasked (a schedule, follow-up or trigger) cannot be "
        "handed to people"
    )
    live.channel = "api"
    over_api = await start_handoff(live, reason="asked for a person")
    assert over_api.error == (
        "handoff: a conversation over the OpenAI-compatible API cannot be handed to people"
    )
    live.depth = 1
    asked = await start_handoff(live, reason="asked for a person")
    assert asked.error == "handoff: a bot asked by another bot cannot be handed to people"
    unset = await start_handoff(context(spec(None), "try"), reason="x")
    assert unset.error == "handoff: faq-bot has no handoff target (/handoff BOT to #channel)"
