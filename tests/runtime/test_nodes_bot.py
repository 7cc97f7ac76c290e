"""The `bot` node: answers with another bot of the team through `ctx.ask_bot`, within the depth
limit; the other bot's usage and error are this turn's."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from runtime.pipeline import TurnOutput, Usage
from tests.runtime.flows import compiled, refusal, says, step, turn


@dataclass
class Colleague:
    """What `ctx.ask_bot` reaches: answers as the other bot would, recording each question."""

    output: TurnOutput = field(
        default_factory=lambda: TurnOutput(
            reply="From billing: 30 days.", usage=Usage(7, 3, 0.01), error=None
        )
    )
    asked: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, *, bot: str, text: str, depth: int) -> TurnOutput:
        self.asked.append({"bot": bot, "text": text, "depth": depth})
        return self.output


ASK = step("ask", "bot", bot="billing-bot")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "step 'ask': bot: is required"),
        ({"bot": "Billing Bot"}, "step 'ask': bot: 'Billing Bot' is not a bot name"),
        ({"bot": "billing-bot", "env": "staging"}, "step 'ask': env: unknown field"),
    ],
)
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    assert refusal(step("ask", "bot", **params)) == message


async def test_it_answers_with_the_other_bots_reply_and_usage() -> None:
    colleague = Colleague()
    intro = says("intro", "Let me ask billing.", "ask")
    output, _ = await turn(compiled(intro, ASK), "refund window?", ask_bot=colleague, depth=1)
    assert colleague.asked == [{"bot": "billing-bot", "text": "refund window?", "depth": 2}]
    assert output.reply == "Let me ask billing.\n\nFrom billing: 30 days."
    assert output.error is None and output.step == "ask" and output.path == ("intro", "ask")
    assert output.usage == Usage(7, 3, 0.01)


async def test_the_other_bots_error_is_this_turns_error() -> None:
    failed = TurnOutput(reply="Sorry.", usage=Usage(None, None, None), error="timeout: too slow")
    output, _ = await turn(compiled(ASK), "hi", ask_bot=Colleague(output=failed))
    assert output.error == "timeout: too slow"
    assert output.reply == "I can't answer that yet."  # this bot's fallback, not the other's
    assert output.usage == Usage(None, None, None)


async def test_bots_ask_each_other_at_most_three_deep() -> None:
    colleague = Colleague()
    output, _ = await turn(compiled(ASK), "hi", ask_bot=colleague, depth=2)
    assert output.error is None and colleague.asked[0]["depth"] == 3
    output, _ = await turn(compiled(ASK), "hi", ask_bot=colleague, depth=3)
    assert output.error == "bot: step 'ask': bots may ask each other at most 3 deep"
    assert len(colleague.asked) == 1 and output.reply == "I can't answer that yet."


async def test_without_a_way_to_ask_it_is_the_turns_error() -> None:
    output, _ = await turn(compiled(ASK), "hi")
    assert output.error == "bot: asking another bot is not available here"
    assert output.path == ("ask",)
