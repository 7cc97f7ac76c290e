"""`LlmGateway.moderate` through the real litellm and openai SDK over real HTTP to the fake
server, under the gateway's retry policy (backoff sleeps recorded, not slept; timeouts real)."""

from __future__ import annotations

import pytest

from runtime.llm import (
    LlmError,
    LlmGateway,
    Moderation,
    RetryPolicy,
)
from tests.fakes.llm import FakeLLM

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")


def gateway(
    api_base: str | None, delays: list[float] | None = None, *, attempt_timeout_s: float = 2.0
) -> LlmGateway:
    recorded = delays if delays is not None else []

    async def record(delay: float) -> None:
        recorded.append(delay)

    policy = RetryPolicy(
        attempts=3, attempt_timeout_s=attempt_timeout_s, deadline_s=5, backoff_s=0.1
    )
    return LlmGateway(api_base=api_base, policy=policy, sleep=record)


async def moderation_error(gw: LlmGateway, text: str = "hello") -> LlmError:
    with pytest.raises(LlmError) as caught:
        await gw.moderate(text)
    return caught.value


async def test_a_verdict_comes_from_the_moderation_endpoint(llm: FakeLLM) -> None:
    gw = gateway(llm.base_url)
    assert await gw.moderate("hello") == Moderation(flagged=False)
    llm.flag("violence", "harassment")
    assert await gw.moderate("or else") == Moderation(
        flagged=True, categories=("harassment", "violence")
    )
    first, second = llm.calls
    assert (first.method, first.path) == ("POST", "/v1/moderations")
    assert first.body == {"input": "hello", "model": "omni-moderation-latest"}
    assert second.body["input"] == "or else"
    assert first.authorization == "Bearer none"  # a server of our own takes any key


async def test_a_key_in_the_environment_is_sent(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    await gateway(llm.base_url).moderate("hello")
    assert llm.calls[0].authorization == "Bearer sk-test-123"


async def test_server_errors_are_retried_with_backoff(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.moderation_fail(500, times=2)
    assert await gateway(llm.base_url, delays).moderate("hello") == Moderation(flagged=False)
    assert len(llm.calls) == 3  # the SDK's own retries are off: each attempt is one request
    assert len(delays) == 2 and delays[0] < delays[1]


@pytest.mark.parametrize(
    ("status", "kind", "requests"),
    [(503, "provider", 3), (429, "rate_limit", 3), (400, "bad_request", 1), (401, "auth", 1)],
)
async def test_failures_are_classified_like_completions(
    llm: FakeLLM, status: int, kind: str, requests: int
) -> None:

    llm.moderation_fail(status, times=3)
    error = await moderation_error(gateway(llm.base_url))
    assert error.kind == kind
    assert len(llm.calls) == requests


async def test_a_slow_moderation_times_out_and_is_retried(llm: FakeLLM) -> None:
    llm.moderation_stall(2.0, times=3)
    error = await moderation_error(gateway(llm.base_url, attempt_timeout_s=0.3))
    assert error.kind == "timeout"
    assert len(llm.calls) == 3


async def test_without_a_key_or_a_server_nothing_is_sent(llm: FakeLLM) -> None:
    error = await moderation_error(gateway(None))
    assert error.kind == "auth" and "OPENAI_API_KEY" in str(error)
    assert llm.calls == []


async def test_offline_has_no_moderation(llm: FakeLLM) -> None:
    with pytest.raises(LlmError, match="provider model"):
        await gateway(llm.base_url).moderate("hello", model="offline")
    assert llm.calls == []
