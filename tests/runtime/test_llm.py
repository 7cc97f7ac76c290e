"""The LLM gateway through the real litellm over real HTTP to the fake OpenAI-compatible server.

Backoff sleeps are injected (recorded, not slept) so retries stay fast; timeouts are real.
"""

from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.llm import (
    ChatMessage,
    LlmAnswer,
    LlmError,
    LlmGateway,
    RetryPolicy,
    ToolCall,
    _tool_call,
)
from tests.fakes.llm import Answer, FakeLLM

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")

MODEL = "openai/fake-model"
HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello")]


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


def tool(name: str, **properties: str) -> dict[str, Any]:
    """An OpenAI tool definition whose parameters are the given string properties."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The Studio's /{name} command.",
            "parameters": {
                "type": "object",
                "properties": {key: {"type": kind} for key, kind in properties.items()},
            },
        },
    }


TOOLS = [tool("newbot", bot="string"), tool("set", field="string", value="string")]


async def ask_with_tools(gw: LlmGateway, model: str = MODEL) -> LlmAnswer:
    return await gw.complete(
        model=model, messages=HELLO, temperature=0.2, fallback="fallback", tools=TOOLS
    )


def raw_tool_calls(*calls: dict[str, Any], text: str | None = None) -> Answer:
    """A whole completion body whose message carries `calls` exactly as given (for odd replies)."""
    message = {"role": "assistant", "content": text, "tool_calls": list(calls)}
    return Answer(
        raw={
            "id": "chatcmpl-raw",
            "object": "chat.completion",
            "created": 0,
            "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        }
    )


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


# -- streamed answers -------------------------------------------------------------------------


async def stream(gw: LlmGateway, model: str = MODEL) -> tuple[LlmAnswer, list[str]]:
    pieces: list[str] = []
    answer = await gw.complete(
        model=model, messages=HELLO, temperature=0.2, fallback="fallback", stream=pieces.append
    )
    return answer, pieces


async def test_a_streamed_answer_comes_word_by_word_with_its_usage_and_price(
    llm: FakeLLM,
) -> None:
    llm.reply("Refunds take five days.", prompt_tokens=24, completion_tokens=7)
    priced, pieces = await stream(gateway(llm.base_url), "openai/gpt-4o-mini")
    assert pieces == ["Refunds ", "take ", "five ", "days."]
    assert (priced.text, priced.prompt_tokens, priced.completion_tokens) == (
        "Refunds take five days.",
        24,
        7,
    )
    llm.reply("Refunds take five days.", prompt_tokens=24, completion_tokens=7)
    whole = await ask(gateway(llm.base_url), "openai/gpt-4o-mini")
    assert whole.cost_usd is not None and priced.cost_usd == pytest.approx(whole.cost_usd)
    assert llm.calls[0].body["stream"] is True
    assert llm.calls[0].body["stream_options"] == {"include_usage": True}
    llm.reply("Hi.")
    unpriced, _ = await stream(gateway(llm.base_url))
    assert unpriced.cost_usd is None  # no price known for this model: unknown, never 0


async def test_a_models_pace_is_learned_from_its_answers(llm: FakeLLM) -> None:
    gw = gateway(llm.base_url)
    assert not gw.answers_within(MODEL, 10.0)  # never asked: unknown
    llm.reply("Hi.")
    await ask(gw)
    assert gw.answers_within(MODEL, 10.0) and not gw.answers_within("openai/other", 10.0)
    for _ in range(3):
        llm.reply("Hi.", delay_s=0.3)
        await stream(gw)
    assert not gw.answers_within(MODEL, 0.1)  # slower of late: a moving mean


async def test_a_stream_without_usage_is_counted_by_litellm(llm: FakeLLM) -> None:
    llm.reply("Refunds take five days.", stream_usage=False)
    answer, pieces = await stream(gateway(llm.base_url), "openai/gpt-4o-mini")
    assert "".join(pieces) == answer.text == "Refunds take five days."
    assert answer.prompt_tokens and answer.completion_tokens and answer.cost_usd


async def test_a_stream_that_breaks_after_text_is_not_asked_again(llm: FakeLLM) -> None:
    llm.broken_stream("one two three", after=2)
    with pytest.raises(LlmError):
        await stream(gateway(llm.base_url))
    assert len(llm.calls) == 1  # its words were shown: asked again, they would show twice
    llm.fail(502)
    llm.reply("Fine.")
    answer, pieces = await stream(gateway(llm.base_url))  # failed before any word: retried
    assert (answer.text, pieces, len(llm.calls)) == ("Fine.", ["Fine."], 3)


# -- tool calls -----------------------------------------------------------------------------


async def test_one_tool_call(llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", {"bot": "x"}))
    answer = await ask_with_tools(gateway(llm.base_url))
    assert answer.tool_calls == (ToolCall(id="call_0", name="newbot", arguments='{"bot": "x"}'),)
    assert answer.text == ""  # content null: no text, not "None"
    assert (answer.prompt_tokens, answer.completion_tokens) == (12, 5)


async def test_several_tool_calls_keep_their_order(llm: FakeLLM) -> None:
    llm.tool_calls(
        ("newbot", {"bot": "x"}),
        ("set", {"field": "greeting", "value": "Hi!"}),
        ("set", {"field": "model", "value": "offline"}),
    )
    answer = await ask_with_tools(gateway(llm.base_url))
    assert [(c.id, c.name) for c in answer.tool_calls] == [
        ("call_0", "newbot"),
        ("call_1", "set"),
        ("call_2", "set"),
    ]
    assert [json.loads(c.arguments) for c in answer.tool_calls] == [
        {"bot": "x"},
        {"field": "greeting", "value": "Hi!"},
        {"field": "model", "value": "offline"},
    ]


async def test_text_and_tool_calls_in_one_answer(llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", {"bot": "x"}), text="Creating x for you.")
    answer = await ask_with_tools(gateway(llm.base_url))
    assert answer.text == "Creating x for you."
    assert [c.name for c in answer.tool_calls] == ["newbot"]


async def test_a_plain_text_answer_to_a_tool_request_has_no_tool_calls(llm: FakeLLM) -> None:
    llm.reply("Which bot do you mean?")
    answer = await ask_with_tools(gateway(llm.base_url))
    assert answer.text == "Which bot do you mean?"
    assert answer.tool_calls == ()


async def test_the_request_offers_the_tools_with_auto_choice(llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", {"bot": "x"}))
    await ask_with_tools(gateway(llm.base_url))
    body = llm.calls[-1].body
    assert body["tools"] == TOOLS
    assert body["tool_choice"] == "auto"
    assert body["temperature"] == 0.2
    assert llm.calls[-1].messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]


async def test_without_tools_the_request_has_no_tools(llm: FakeLLM) -> None:
    answer = await ask(gateway(llm.base_url))
    assert answer.tool_calls == ()
    body = llm.calls[-1].body
    assert "tools" not in body
    assert "tool_choice" not in body


async def test_an_empty_tool_list_is_no_tools(llm: FakeLLM) -> None:
    await gateway(llm.base_url).complete(
        model=MODEL, messages=HELLO, temperature=0.2, fallback="fallback", tools=[]
    )
    assert "tools" not in llm.calls[-1].body  # an empty `tools` is a 400 at OpenAI


async def test_malformed_arguments_are_passed_through_verbatim(llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", '{"bot": '), ("set", "not json at all"))
    answer = await ask_with_tools(gateway(llm.base_url))
    assert [c.arguments for c in answer.tool_calls] == ['{"bot": ', "not json at all"]


# The openai SDK keeps the object where its model expects a string, and pydantic warns when
# litellm serialises it: the library's noise, not ours.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
async def test_arguments_given_as_an_object_become_a_json_string(llm: FakeLLM) -> None:
    arguments = {"bot": "x", "tags": ["a", "b"], "n": 1}
    llm.script(
        raw_tool_calls(
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "newbot", "arguments": arguments},
            }
        )
    )
    [call] = (await ask_with_tools(gateway(llm.base_url))).tool_calls
    assert (call.id, call.name) == ("call_a", "newbot")
    assert isinstance(call.arguments, str)
    assert json.loads(call.arguments) == arguments


async def test_missing_arguments_and_ids_are_filled_in(llm: FakeLLM) -> None:
    llm.script(
        raw_tool_calls(
            {"type": "function", "function": {"name": "newbot", "arguments": None}},
            {"type": "function", "function": {"name": "set"}},
        )
    )
    answer = await ask_with_tools(gateway(llm.base_url))
    assert [(c.name, c.arguments) for c in answer.tool_calls] == [("newbot", "{}"), ("set", "{}")]
    ids = [c.id for c in answer.tool_calls]
    assert all(ids) and len(set(ids)) == 2  # litellm invents ids (uuids) before the gateway does


def test_a_tool_call_from_an_odd_provider_is_normalised() -> None:
    # Shaped like litellm's objects but rawer than litellm itself produces: no id, an object.
    odd = SimpleNamespace(id=None, function=SimpleNamespace(name="set", arguments={"k": "é"}))
    assert _tool_call(odd, 3) == ToolCall(id="call_3", name="set", arguments='{"k": "é"}')
    blank = SimpleNamespace(id="", function=SimpleNamespace(name="newbot", arguments="  "))
    assert _tool_call(blank, 1) == ToolCall(id="call_1", name="newbot", arguments="{}")


async def test_a_tool_request_is_retried_like_any_other(llm: FakeLLM) -> None:
    delays: list[float] = []
    llm.fail(503)
    llm.tool_calls(("newbot", {"bot": "x"}))
    answer = await ask_with_tools(gateway(llm.base_url, delays))
    assert [c.name for c in answer.tool_calls] == ["newbot"]
    assert len(llm.calls) == 2 and len(delays) == 1
    assert all(call.body["tools"] == TOOLS for call in llm.calls)


async def test_offline_with_tools_answers_the_fallback_without_tool_calls(llm: FakeLLM) -> None:
    answer = await gateway(llm.base_url).complete(
        model="offline", messages=HELLO, temperature=0.2, fallback="Not yet.", tools=TOOLS
    )
    assert answer == LlmAnswer(
        text="Not yet.", model="offline", prompt_tokens=0, completion_tokens=0, cost_usd=0.0
    )
    assert answer.tool_calls == ()
    assert llm.calls == []


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
