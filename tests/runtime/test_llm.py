"""The LLM gateway through real litellm over HTTP to the fake OpenAI-compatible server."""

from __future__ import annotations

import pytest

from runtime.llm import ChatMessage, LlmError, LlmGateway, RetryPolicy
from tests.fakes.llm import FakeLLM

MODEL = "openai/fake-model"
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello")]


def gateway(llm: FakeLLM, delays: list[float], **policy: float) -> LlmGateway:
    async def record(delay: float) -> None:
        delays.append(delay)

    settings = {"attempts": 3, "attempt_timeout_s": 2.0, "deadline_s": 5.0, "backoff_s": 0.1}
    settings.update(policy)
    return LlmGateway(api_base=llm.base_url, policy=RetryPolicy(**settings), sleep=record)  # type: ignore[arg-type]


async def test_an_answer_with_usage_and_unknown_cost(llm: FakeLLM) -> None:
    llm.reply("hi there", prompt_tokens=7, completion_tokens=3)
    answer = await gateway(llm, []).complete(
        model=MODEL, messages=HELLO, temperature=0.2, fallback="x"
    )
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("hi there", 7, 3)
    assert answer.cost_usd is None  # no price known for this model: unknown, not 0
    call = llm.calls[0]
    assert call.body["model"] == "fake-model" and call.body["temperature"] == 0.2
    assert call.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]


async def test_server_errors_are_retried_with_backoff(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(500)
    llm.fail(503)
    llm.reply("finally")
    answer = await gateway(llm, delays).complete(
        model=MODEL, messages=HELLO, temperature=0, fallback="x"
    )
    assert answer.text == "finally"
    assert len(llm.calls) == 3 and len(delays) == 2
    assert delays[1] > delays[0]


async def test_rate_limits_honour_retry_after(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(429, headers={"retry-after": "2"})
    llm.reply("ok")
    answer = await gateway(llm, delays).complete(
        model=MODEL, messages=HELLO, temperature=0, fallback="x"
    )
    assert answer.text == "ok"
    assert delays and delays[0] >= 1.6  # 2 s with jitter


async def test_timeouts_give_up_within_the_deadline(llm: FakeLLM) -> None:
    llm.stall(1.0, times=5)
    delays: list[float] = []
    with pytest.raises(LlmError) as caught:
        await gateway(llm, delays, attempt_timeout_s=0.2, deadline_s=3.0, attempts=2).complete(
            model=MODEL, messages=HELLO, temperature=0, fallback="x"
        )
    assert caught.value.kind == "timeout"
    assert len(llm.calls) == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "bad_request"), (401, "auth"), (404, "bad_request")]
)
async def test_client_errors_are_not_retried(llm: FakeLLM, status: int, kind: str) -> None:
    llm.fail(status, times=3, error="nope")
    with pytest.raises(LlmError) as caught:
        await gateway(llm, []).complete(model=MODEL, messages=HELLO, temperature=0, fallback="x")
    assert caught.value.kind == kind
    assert len(llm.calls) == 1


async def test_offline_needs_no_network(llm: FakeLLM) -> None:
    answer = await gateway(llm, []).complete(
        model="offline", messages=HELLO, temperature=0, fallback="Not yet."
    )
    assert answer.text == "Not yet." and answer.cost_usd == 0.0
    assert llm.calls == []


async def test_the_api_base_is_only_for_openai_models(llm: FakeLLM) -> None:
    with pytest.raises(LlmError) as caught:
        await gateway(llm, []).complete(
            model="anthropic/claude-3-5-haiku-latest", messages=HELLO, temperature=0, fallback="x"
        )
    assert caught.value.kind in {"auth", "bad_request", "provider"}
    assert llm.calls == []
