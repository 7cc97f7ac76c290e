"""The guardrails step in a chain before a recording endpoint; moderation goes to the fake LLM
over real HTTP through litellm."""

from __future__ import annotations

import pytest

from runtime.llm import LlmGateway, RetryPolicy
from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.turn.chain import build_chain
from runtime.turn.guardrails import (
    BLOCKED_REPLY,
    FLAGGED_REPLY,
    UNCHECKED_REPLY,
    GuardrailStep,
    blocked_pattern,
)
from tests.fakes.llm import FakeLLM
from tests.runtime.turn.steps import Endpoint, context, spec

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")


async def run(ctx: TurnContext, endpoint: Endpoint | None = None) -> tuple[TurnOutput, Endpoint]:
    endpoint = endpoint or Endpoint()
    return await build_chain([GuardrailStep()], endpoint)(ctx), endpoint


def refused(output: TurnOutput, endpoint: Endpoint, guard: str) -> bool:
    return (
        output.blocked == guard
        and output.usage == Usage(0, 0, 0.0)
        and output.step is None
        and endpoint.seen == []
    )


async def test_a_bot_without_guardrails_answers_as_if_there_were_none() -> None:
    ctx = context("My email is ann@example.com, my password is hunter2.")
    output, endpoint = await run(ctx)
    assert output.reply == "ok" and output.blocked is None and output.error is None
    assert endpoint.seen == ["My email is ann@example.com, my password is hunter2."]
    assert ctx.stored_text is None


async def test_a_message_over_the_limit_is_refused_with_the_limit_named() -> None:
    bot = spec(guardrails={"max_input_chars": 1200})
    output, endpoint = await run(context("x" * 1201, bot))
    assert refused(output, endpoint, "too_long") and output.error is None
    # 1,200 characters are let through, so the reply must not ask for fewer ("under 1,200")
    assert output.reply == "Your message is too long: please keep it to 1,200 characters or fewer."
    output, endpoint = await run(context("x" * 1200, bot))
    assert output.reply == "ok" and endpoint.seen == ["x" * 1200]


@pytest.mark.parametrize(
    "text",
    [
        "What is the PASSWORD?",
        "password",
        "my password: 1234",
        "tell me the (Password)",
        "about the credit   card limit",
        "CREDIT CARD",
    ],
)
async def test_a_blocked_term_refuses_the_message_without_echoing_it(text: str) -> None:
    bot = spec(guardrails={"blocked_terms": ["password", "credit card"]})
    output, endpoint = await run(context(text, bot))
    assert refused(output, endpoint, "blocked_term") and output.error is None
    assert output.reply == BLOCKED_REPLY
    assert "password" not in output.reply.lower() and "credit" not in output.reply.lower()


@pytest.mark.parametrize(
    "text", ["passwords are hashed", "a passwordless login", "creditcard", "1password"]
)
async def test_a_blocked_term_is_matched_as_whole_words_only(text: str) -> None:
    bot = spec(guardrails={"blocked_terms": ["password", "credit card"]})
    output, endpoint = await run(context(text, bot))
    assert output.reply == "ok" and endpoint.seen == [text]


def test_terms_with_symbols_are_matched_literally() -> None:
    pattern = blocked_pattern(("c++", "a.b", " spaced   out "))
    assert pattern.search("I write C++ daily")
    assert not pattern.search("I write c+ daily")
    assert pattern.search("see a.b") and not pattern.search("see axb")
    assert pattern.search("it is spaced out")
    assert not blocked_pattern((" ",)).search("anything at all")


async def test_personal_data_is_masked_for_the_model_and_the_transcript() -> None:
    bot = spec(guardrails={"pii": True})
    said = "I'm ann@example.com, card 4111 1111 1111 1111, call +44 20 7946 0958."
    ctx = context(said, bot)
    output, endpoint = await run(ctx)
    masked = "I'm [email], card [card], call [phone]."
    assert output.reply == "ok" and endpoint.seen == [masked]
    assert ctx.text == masked and ctx.stored_text == masked


async def test_a_message_without_personal_data_keeps_its_words() -> None:
    ctx = context(
        "Where is order 12345, placed on 2026-01-15 for $1,234.56?", spec(guardrails={"pii": True})
    )
    output, endpoint = await run(ctx)
    assert output.reply == "ok"
    assert endpoint.seen == ["Where is order 12345, placed on 2026-01-15 for $1,234.56?"]
    assert ctx.stored_text is None


async def test_a_refused_message_is_still_stored_masked() -> None:
    bot = spec(guardrails={"pii": True, "blocked_terms": ["password"]})
    ctx = context("my password for bob@example.org", bot)
    output, endpoint = await run(ctx)
    assert refused(output, endpoint, "blocked_term")
    assert ctx.stored_text == "my password for [email]"


# -- moderation, over real HTTP ---------------------------------------------------------------


def moderated(llm: FakeLLM, text: str, **guardrails: object) -> TurnContext:
    gateway = LlmGateway(
        api_base=llm.base_url,
        policy=RetryPolicy(attempts=2, attempt_timeout_s=2, deadline_s=5, backoff_s=0.01),
    )
    bot = spec(model="openai/fake-model", guardrails={"moderation": True, **guardrails})
    return context(text, bot, llm=gateway)


async def test_a_flagged_message_is_refused_politely(llm: FakeLLM) -> None:
    llm.flag("harassment")
    output, endpoint = await run(moderated(llm, "you are all idiots"))
    assert refused(output, endpoint, "moderation") and output.error is None
    assert output.reply == FLAGGED_REPLY and "idiots" not in output.reply
    [call] = llm.calls
    assert call.path == "/v1/moderations"
    assert call.body == {"input": "you are all idiots", "model": "omni-moderation-latest"}


async def test_a_message_moderation_lets_through_is_answered(llm: FakeLLM) -> None:
    output, endpoint = await run(moderated(llm, "hello"))
    assert output.reply == "ok" and endpoint.seen == ["hello"]
    assert [call.path for call in llm.calls] == ["/v1/moderations"]


async def test_moderation_sees_the_masked_text(llm: FakeLLM) -> None:
    output, endpoint = await run(moderated(llm, "mail ann@example.com", pii=True))
    assert output.reply == "ok" and endpoint.seen == ["mail [email]"]
    assert llm.calls[0].body["input"] == "mail [email]"


async def test_moderation_fails_closed_with_an_error_stats_count(llm: FakeLLM) -> None:
    llm.moderation_fail(503, times=2)
    output, endpoint = await run(moderated(llm, "hello"))
    assert output.blocked == "moderation" and endpoint.seen == []
    assert output.reply == UNCHECKED_REPLY
    assert output.error is not None and output.error.startswith("moderation provider: ")
    assert len(llm.calls) == 2  # retried once, as the gateway's policy says


async def test_a_moderation_retry_that_succeeds_answers(llm: FakeLLM) -> None:
    llm.moderation_fail(500)
    output, endpoint = await run(moderated(llm, "hello"))
    assert output.reply == "ok" and output.error is None and endpoint.seen == ["hello"]
