"""The LLM gateway through the real litellm over real HTTP to the fake OpenAI-compatible server.

Backoff sleeps are injected (recorded, not slept) so retries stay fast; timeouts are real.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from runtime.llm import ChatMessage, LlmAnswer, LlmError, LlmGateway, RetryPolicy, import_litellm
from tests.fakes.llm import FakeLLM

MODEL = "openai/fake-model"
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello")]


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> Iterator[None]:
    """Pay litellm's import (~3 s) once, in setup, rather than inside the first test."""
    import_litellm()
    yield


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's keys must not change what is sent (or let a call leave the machine)."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_API_BASE", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def gateway(
    api_base: str | None,
    delays: list[float] | None = None,
    *,
    attempts: int = 3,
    attempt_timeout_s: float = 1.0,
    deadline_s: float = 5.0,
    backoff_s: float = 0.1,
    max_backoff_s: float = 1.0,
) -> LlmGateway:
    """A gateway whose backoff sleeps are recorded in `delays` instead of slept."""
    recorded = delays if delays is not None else []

    async def record(delay: float) -> None:
        recorded.append(delay)

    policy = RetryPolicy(
        attempts=attempts,
        attempt_timeout_s=attempt_timeout_s,
        deadline_s=deadline_s,
        backoff_s=backoff_s,
        max_backoff_s=max_backoff_s,
    )
    return LlmGateway(api_base=api_base, policy=policy, sleep=record)


async def ask(gw: LlmGateway, model: str = MODEL, fallback: str = "fallback") -> LlmAnswer:
    return await gw.complete(model=model, messages=HELLO, temperature=0.2, fallback=fallback)


async def ask_error(gw: LlmGateway, model: str = MODEL) -> LlmError:
    with pytest.raises(LlmError) as caught:
        await ask(gw, model)
    return caught.value


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- success --------------------------------------------------------------------------------


async def test_an_answer_with_usage_and_unknown_cost(llm: FakeLLM) -> None:
    llm.reply("hi there", prompt_tokens=7, completion_tokens=3)
    answer = await ask(gateway(llm.base_url))
    assert answer == LlmAnswer(
        text="hi there", model=MODEL, prompt_tokens=7, completion_tokens=3, cost_usd=None
    )  # no price is known for this model: the cost is unknown, not 0
    [call] = llm.calls
    assert call.path == "/v1/chat/completions"
    assert call.body["model"] == "fake-model"  # the provider prefix is litellm's routing only
    assert call.body["temperature"] == 0.2
    assert not call.body.get("stream")
    assert call.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]


async def test_the_default_answer_echoes_the_last_user_message(llm: FakeLLM) -> None:
    answer = await ask(gateway(llm.base_url))
    assert answer.text == "echo: hello"
    assert (answer.prompt_tokens, answer.completion_tokens) == (12, 5)


async def test_any_key_is_sent_to_an_openai_compatible_server(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ask(gateway(llm.base_url))
    assert llm.calls[-1].authorization == "Bearer none"  # vLLM, Ollama... take any key
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    await ask(gateway(llm.base_url))
    assert llm.calls[-1].authorization == "Bearer sk-test-123"


async def test_a_base_url_without_v1_also_works(llm: FakeLLM) -> None:
    answer = await ask(gateway(llm.root_url))
    assert answer.text == "echo: hello"
    assert llm.calls[-1].path == "/chat/completions"


# -- retries --------------------------------------------------------------------------------


async def test_a_server_error_is_retried(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(500)
    llm.reply("finally")
    answer = await ask(gateway(llm.base_url, delays))
    assert answer.text == "finally"
    assert len(llm.calls) == 2 and len(delays) == 1
    assert 0.08 <= delays[0] <= 0.12  # backoff_s with ±20 % jitter


async def test_backoff_grows_between_attempts(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(500)
    llm.fail(503)
    llm.reply("finally")
    answer = await ask(gateway(llm.base_url, delays))
    assert answer.text == "finally"
    assert len(llm.calls) == 3 and len(delays) == 2
    assert delays[1] > delays[0]


async def test_server_errors_give_up_after_the_attempts(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(502, times=5, error="upstream down")
    error = await ask_error(gateway(llm.base_url, delays, attempts=3))
    assert error.kind == "provider"
    assert "upstream down" in str(error) and str(error).startswith("provider: ")
    assert len(llm.calls) == 3 and len(delays) == 2
    assert llm.pending == 2


async def test_rate_limits_honour_retry_after(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.rate_limit(retry_after=2)
    llm.reply("ok")
    answer = await ask(gateway(llm.base_url, delays))
    assert answer.text == "ok"
    assert len(llm.calls) == 2
    assert delays and delays[0] >= 2.0  # never earlier than the server asked, jitter or not


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.rate_limit(retry_after=30)
    llm.reply("too late to matter")
    error = await ask_error(gateway(llm.base_url, delays, deadline_s=5.0))
    assert error.kind == "rate_limit"
    assert len(llm.calls) == 1 and delays == []


async def test_rate_limits_without_retry_after_back_off(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.rate_limit(times=5)
    error = await ask_error(gateway(llm.base_url, delays, attempts=2))
    assert error.kind == "rate_limit"
    assert len(llm.calls) == 2 and len(delays) == 1 and delays[0] < 0.2


async def test_timeouts_give_up_after_the_attempts_within_the_deadline(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.stall(1.5, times=5)
    started = time.monotonic()
    error = await ask_error(
        gateway(llm.base_url, delays, attempts=2, attempt_timeout_s=0.2, deadline_s=3.0)
    )
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert len(llm.calls) == 2 and len(delays) == 1
    assert 0.35 <= elapsed < 1.0  # two attempts of 0.2 s, not the stall of 1.5 s


async def test_the_deadline_caps_attempts_and_their_timeouts(llm: FakeLLM) -> None:
    llm.stall(1.5, times=10)
    started = time.monotonic()
    error = await ask_error(
        gateway(llm.base_url, attempts=10, attempt_timeout_s=0.3, deadline_s=0.5, backoff_s=0.01)
    )
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert 2 <= len(llm.calls) < 10  # the last attempt gets only what is left of the deadline
    assert elapsed < 0.5 + 0.3  # the deadline, give or take a request's overhead


async def test_a_slow_answer_within_the_attempt_timeout_is_kept(llm: FakeLLM) -> None:
    llm.reply("worth the wait", delay_s=0.2)
    answer = await ask(gateway(llm.base_url, attempt_timeout_s=1.0))
    assert answer.text == "worth the wait"
    assert len(llm.calls) == 1


async def test_an_unreachable_server_is_retried_then_a_provider_error(llm: FakeLLM) -> None:
    delays: list[float] = []
    error = await ask_error(gateway(f"http://127.0.0.1:{closed_port()}/v1", delays, attempts=2))
    assert error.kind == "provider"
    assert len(delays) == 1
    assert llm.calls == []


# -- errors that are not retried ------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "bad_request"), (401, "auth"), (403, "auth"), (404, "bad_request")],
)
async def test_client_errors_are_not_retried(llm: FakeLLM, status: int, kind: str) -> None:
    delays: list[float] = []
    llm.fail(status, times=3, error="nope")
    error = await ask_error(gateway(llm.base_url, delays))
    assert error.kind == kind
    assert "nope" in str(error)
    assert len(llm.calls) == 1 and delays == []


# -- offline and routing ------------------------------------------------------------------


async def test_offline_needs_no_network(llm: FakeLLM) -> None:
    gw = gateway(llm.base_url)
    answer = await gw.complete(
        model="offline", messages=HELLO, temperature=0.7, fallback="Not yet."
    )
    assert answer == LlmAnswer(
        text="Not yet.", model="offline", prompt_tokens=0, completion_tokens=0, cost_usd=0.0
    )
    assert llm.calls == []


async def test_offline_needs_no_server_at_all() -> None:
    gw = gateway(f"http://127.0.0.1:{closed_port()}/v1")
    answer = await ask(gw, "offline", fallback="Later.")
    assert answer.text == "Later."


async def test_the_api_base_is_only_for_openai_models(llm: FakeLLM) -> None:
    # Ollama's default address is localhost:11434 (refused here). Had the gateway passed its
    # api_base along, the request would have reached the fake (recorded, as any path is).
    error = await ask_error(gateway(llm.base_url, attempts=1), "ollama_chat/llama3")
    assert error.kind == "provider"
    assert llm.calls == []
    # and an openai/ model on the same gateway does reach the fake
    assert (await ask(gateway(llm.base_url))).text == "echo: hello"
    assert len(llm.calls) == 1


async def test_without_an_api_base_openai_models_do_not_reach_the_fake(llm: FakeLLM) -> None:
    # No OPENAI_API_KEY: the openai SDK refuses before any request ("Missing credentials"),
    # which litellm reports as a 500, hence "provider" rather than "auth".
    error = await ask_error(gateway(None, attempts=1))
    assert "credentials" in str(error)
    assert llm.calls == []
