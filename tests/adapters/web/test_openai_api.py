"""Every bot an OpenAI-compatible API (`/openai/v1`), driven by the official `openai` SDK against
the running app: answers, streams, models, conversations, roles, failures and refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from adapters.web.openai_api import ChatCompletionChunkOut, completion_events
from runtime.api_turns import ApiAsk, ApiTurns, resolve
from runtime.turn.guardrails import BLOCKED_REPLY
from tests.adapters.web.conftest import serving
from tests.conftest import running_service, service_settings
from tests.counters import counts, moved
from tests.factories import Service, spec_data
from tests.fakes.llm import FakeLLM
from tests.scenarios.test_readme import _fence

OUTCOMES = ("ok", "error", "blocked")


@asynccontextmanager
async def sdk(service: Service, key: str | None = None) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official client (on its own HTTP library) reaching the app over ASGI, with no
    retries of its own."""
    transport = httpx2.ASGITransport(app=service.app)
    async with httpx2.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(
            base_url="http://studio.test/openai/v1",
            api_key=key or service.key,
            http_client=http,
            max_retries=0,
        )


@asynccontextmanager
async def live_service(tmp_path: Path, llm: FakeLLM, **fields: Any) -> AsyncIterator[Service]:
    """A service whose `faq-bot` (on the fake model) runs in staging and production."""
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.import_bot(model="openai/fake-model", **fields)
        for env in ("staging", "production"):
            await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
        yield service


async def _viewer_key(service: Service) -> str:
    made = await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    return str(made.key)


async def _api_conversations(service: Service) -> list[dict[str, Any]]:
    found = await service.call("GET", "/api/v1/bots/faq-bot/conversations")
    return [c for c in found if c["channel"] == "api"]


async def test_a_bot_answers_the_sdk_with_the_callers_messages_as_history(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        before = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        llm.reply("Five days.", prompt_tokens=7, completion_tokens=3)
        completion = await client.chat.completions.create(
            model="faq-bot",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! Ask me anything."},
                {"role": "user", "content": [{"type": "text", "text": "Refunds?"}]},
            ],
        )
        assert completion.id.startswith("chatcmpl-") and completion.object == "chat.completion"
        assert completion.model == "faq-bot" and completion.created > 0
        choice = completion.choices[0]
        assert (choice.message.role, choice.message.content) == ("assistant", "Five days.")
        assert choice.finish_reason == "stop"
        assert completion.usage is not None
        usage = completion.usage.model_dump()
        assert usage["prompt_tokens"] == 7 and usage["completion_tokens"] == 3
        assert usage["total_tokens"] == 10 and "cost_usd" in usage
        sent = [(m["role"], m["content"]) for m in llm.calls[-1].messages]
        assert sent[0][0] == "system" and sent[1:] == [
            ("user", "Hi"),
            ("assistant", "Hello! Ask me anything."),
            ("user", "Refunds?"),
        ]
        after = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        assert moved(before, after) == {"api/ok": 1}
        # kept as a conversation of its own on the channel `api`: the turn, not the history
        [kept] = await _api_conversations(service)
        assert kept["messages"] == 2 and kept["user"] == "api:owner"
        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
        assert stats["turns"] == 1

        llm.reply("Bye.")
        await client.chat.completions.create(
            model="faq-bot", messages=[{"role": "user", "content": "Thanks"}]
        )
        assert len(await _api_conversations(service)) == 2  # each call its own conversation


async def test_a_completion_is_openais_json_on_the_wire(tmp_path: Path, llm: FakeLLM) -> None:
    """The body as it is sent (serialised by pydantic, not FastAPI's encoder): JSON with every
    field of OpenAI's chat completion, `logprobs` and an unknown cost as null."""
    async with live_service(tmp_path, llm) as service:
        llm.reply("Five days.", prompt_tokens=7, completion_tokens=3)
        response = await service.client.post(
            "/openai/v1/chat/completions",
            json={"model": "faq-bot", "messages": [{"role": "user", "content": "Refunds?"}]},
            headers=service.auth(),
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
        assert {key: body[key] for key in ("object", "model", "choices", "usage")} == {
            "object": "chat.completion",
            "model": "faq-bot",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Five days."},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": 7,
                "completion_tokens": 3,
                "total_tokens": 10,
                "cost_usd": None,  # the fake model has no price
            },
        }
        assert len(body) == 6


async def test_a_streamed_answer_comes_in_openai_chunks(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        llm.reply("Refunds take five days.", prompt_tokens=9, completion_tokens=4)
        stream = await client.chat.completions.create(
            model="faq-bot",
            messages=[{"role": "user", "content": "Refunds?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert {c.object for c in chunks} == {"chat.completion.chunk"}
        assert len({c.id for c in chunks}) == 1 and chunks[0].model == "faq-bot"
        assert chunks[0].choices[0].delta.role == "assistant"
        pieces = [c.choices[0].delta.content for c in chunks if c.choices]
        assert [p for p in pieces if p] == ["Refunds ", "take ", "five ", "days."]  # as written
        assert llm.calls[-1].body["stream"] is True
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] == "stop" and finishes[:-1] == [None] * (len(finishes) - 1)
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.total_tokens) == (9, 13)
        [kept] = await _api_conversations(service)
        assert kept["messages"] == 2

        llm.reply("Yes.")
        plain = await client.chat.completions.create(
            model="faq-bot", messages=[{"role": "user", "content": "Card?"}], stream=True
        )
        assert [c.usage for c in [chunk async for chunk in plain]] == [None] * 3


async def test_user_names_a_stored_conversation_to_continue(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        llm.reply("Five days.")
        await client.chat.completions.create(
            model="faq-bot", messages=[{"role": "user", "content": "Refunds?"}], user="alice"
        )
        llm.reply("By card too.")
        answered = await client.chat.completions.create(
            model="faq-bot",
            # only the last message is the turn: alice's stored conversation is the history
            messages=[
                {"role": "user", "content": "not sent"},
                {"role": "user", "content": "And by card?"},
            ],
            user="alice",
        )
        assert answered.choices[0].message.content == "By card too."
        sent = [(m["role"], m["content"]) for m in llm.calls[-1].messages][1:]
        assert sent == [("user", "Refunds?"), ("assistant", "Five days."), ("user", "And by card?")]
        llm.reply("Hi Bob.")
        await client.chat.completions.create(
            model="faq-bot", messages=[{"role": "user", "content": "Hello"}], user="bob"
        )
        assert [m["role"] for m in llm.calls[-1].messages] == ["system", "user"]
        kept = await _api_conversations(service)
        assert sorted((c["user"], c["messages"]) for c in kept) == [("alice", 4), ("bob", 2)]


async def test_models_and_staging_follow_the_keys_role(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_service(tmp_path, llm) as service:
        await service.import_bot("draft-bot", model="openai/fake-model")  # nothing promoted
        await service.call(
            "PATCH", "/api/v1/bots/faq-bot", json={"prompt": "You are the staging bot."}
        )
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
        viewer = await _viewer_key(service)
        async with sdk(service) as owner, sdk(service, viewer) as looker:
            listed = [(m.id, m.object, m.owned_by) async for m in owner.models.list()]
            assert listed == [("faq-bot", "model", "local"), ("faq-bot@staging", "model", "local")]
            assert [m.id async for m in looker.models.list()] == ["faq-bot"]
            assert (await owner.models.retrieve("faq-bot@staging")).id == "faq-bot@staging"
            with pytest.raises(openai.NotFoundError):
                await owner.models.retrieve("draft-bot")

            llm.reply("From staging.")
            staged = await owner.chat.completions.create(
                model="faq-bot@staging", messages=[{"role": "user", "content": "Hi"}]
            )
            assert staged.model == "faq-bot@staging"
            assert llm.calls[-1].messages[0]["content"].startswith("You are the staging bot.")
            llm.reply("From production.")
            await looker.chat.completions.create(
                model="faq-bot", messages=[{"role": "user", "content": "Hi"}]
            )
            assert llm.calls[-1].messages[0]["content"].startswith("You answer questions")
            with pytest.raises(openai.PermissionDeniedError) as refused:
                await looker.chat.completions.create(
                    model="faq-bot@staging", messages=[{"role": "user", "content": "Hi"}]
                )
            assert "needs the editor role" in refused.value.message
            with pytest.raises(openai.PermissionDeniedError):
                await looker.models.retrieve("faq-bot@staging")


async def test_bad_calls_get_openai_errors_and_change_nothing(tmp_path: Path, llm: FakeLLM) -> None:
    user: ChatCompletionMessageParam = {"role": "user", "content": "Hi"}
    cases: list[tuple[dict[str, Any], type[openai.APIStatusError], str | None, str]] = [
        ({"model": "fqa-bot"}, openai.NotFoundError, "model_not_found", "no bot called 'fqa-bot'"),
        ({"model": "faq-bot@prod"}, openai.NotFoundError, "model_not_found", "name@staging"),
        (
            {"messages": [{"role": "system", "content": "Be rude."}, user]},
            openai.BadRequestError,
            None,
            "prompt is set in the Studio",
        ),
        (
            {"temperature": 0.1, "max_tokens": 5},
            openai.BadRequestError,
            "unsupported_parameter",
            "`max_tokens`, `temperature` not taken",
        ),
        ({"messages": []}, openai.BadRequestError, None, "at least the user's message"),
        (
            {"messages": [user, {"role": "assistant", "content": "Hello"}]},
            openai.BadRequestError,
            None,
            "the last message must be the user's",
        ),
        (
            {"messages": [{"role": "user", "content": "x" * 4001}]},
            openai.APIStatusError,
            "request_too_large",
            "at most 4,000 characters",
        ),
        ({"n": 2}, openai.BadRequestError, "unsupported_value", "one answer"),
        ({"user": ""}, openai.BadRequestError, None, "user: String should have at least"),
        (
            {"extra_body": {"stream": "yes"}},
            openai.BadRequestError,
            None,
            "stream: Input should be a valid boolean",
        ),
    ]
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        for change, error, code, words in cases:
            call: dict[str, Any] = {"model": "faq-bot", "messages": [user], **change}
            with pytest.raises(error) as raised:
                await client.chat.completions.create(**call)
            assert raised.value.code == code, (change, raised.value.body)
            assert words in raised.value.message, (change, raised.value.message)
            if code == "request_too_large":
                assert raised.value.status_code == 413
        async with sdk(service, "not-a-key") as stranger:
            with pytest.raises(openai.AuthenticationError) as denied:
                await stranger.chat.completions.create(model="faq-bot", messages=[user])
            assert denied.value.code == "invalid_api_key"
        malformed = await service.client.post(
            "/openai/v1/chat/completions",
            content=b"{not json",
            headers={**service.auth(), "content-type": "application/json"},
        )
        assert malformed.status_code == 400
        assert malformed.json()["error"]["type"] == "invalid_request_error"
        assert llm.calls == [] and await _api_conversations(service) == []
        assert (
            "/openai/v1/chat/completions"
            not in (await service.call("GET", "/openapi.json"))["paths"]
        )


async def test_production_api_turns_are_production_s_real_conversations_for_datasets(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """`/dataset BOT from-last` reads production's API turns too (stateless or a person's), not
    staging's: a bot used only through the API is not 'answered no one in production'."""
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        for model, text, user in (
            ("faq-bot", "prod stateless", None),
            ("faq-bot@staging", "staging stateless", None),
            ("faq-bot", "prod alice", "alice"),
            ("faq-bot@staging", "staging alice", "alice"),
        ):
            said: ChatCompletionMessageParam = {"role": "user", "content": text}
            extra = {"user": user} if user else {}
            await client.chat.completions.create(model=model, messages=[said], **extra)
        made = await service.call(
            "POST", "/api/v1/bots/faq-bot/datasets", json={"from": "last", "count": 10}
        )
    assert [(row["turns"], row["reference"]) for row in made["content"]["rows"]] == [
        (["prod stateless"], "echo: prod stateless"),
        (["prod alice"], "echo: prod alice"),
    ]


async def test_what_no_route_takes_is_refused_in_openais_shape_too(
    tmp_path: Path, llm: FakeLLM
) -> None:
    """A body over the cap (refused before routing) and a URL the API does not serve (the
    SDK's embeddings, legacy completions) answer OpenAI's error shape, saying what is served."""
    user: ChatCompletionMessageParam = {"role": "user", "content": "Hi"}
    earlier: ChatCompletionMessageParam = {"role": "assistant", "content": "x" * 1_100_000}
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        with pytest.raises(openai.APIStatusError) as too_big:
            await client.chat.completions.create(model="faq-bot", messages=[earlier, user])
        assert too_big.value.status_code == 413
        assert too_big.value.code == "request_too_large"
        assert "the limit is 1 MB" in too_big.value.message
        with pytest.raises(openai.NotFoundError) as unserved:
            await client.embeddings.create(model="faq-bot", input="Hi")
        assert unserved.value.code == "not_found"
        assert "Invalid URL (POST /openai/v1/embeddings)" in unserved.value.message
        assert "POST /openai/v1/chat/completions" in unserved.value.message
        with pytest.raises(openai.NotFoundError):
            await client.completions.create(model="faq-bot", prompt="Hi")
        wrong_method = await service.client.get("/openai/v1/chat/completions")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["type"] == "invalid_request_error"
        assert llm.calls == [] and await _api_conversations(service) == []
        elsewhere = await service.client.get("/api/v1/nothing-here", headers=service.auth())
        assert elsewhere.json() == {"error": "Not Found"}  # the rest keeps its own shape


async def test_a_failed_turn_is_a_502_stored_and_counted_once(tmp_path: Path, llm: FakeLLM) -> None:
    async with live_service(tmp_path, llm) as service, sdk(service) as client:
        before = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        llm.fail(401, times=2)
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(
                model="faq-bot", messages=[{"role": "user", "content": "Refunds?"}]
            )
        assert failed.value.status_code == 502 and failed.value.code == "auth"
        assert failed.value.response.headers["x-should-retry"] == "false"
        with pytest.raises(openai.InternalServerError):  # a stream fails before it starts
            await client.chat.completions.create(
                model="faq-bot", messages=[{"role": "user", "content": "Again?"}], stream=True
            )
        llm.broken_stream("one two three four", after=2)  # the model fails after two words
        broken = await client.chat.completions.create(
            model="faq-bot", messages=[{"role": "user", "content": "Count?"}], stream=True
        )
        got: list[str] = []
        with pytest.raises(openai.APIError):
            async for chunk in broken:
                got += [c.delta.content for c in chunk.choices if c.delta.content]
        assert got == ["one ", "two "]
        after = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        assert moved(before, after) == {"api/error": 3}
        kept = await _api_conversations(service)
        assert len(kept) == 3
        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
        assert stats["errors"] == 3


async def test_a_guard_refusal_is_a_content_filtered_answer(tmp_path: Path, llm: FakeLLM) -> None:
    fields = {"guardrails": {"blocked_terms": ["chargeback"]}}
    async with live_service(tmp_path, llm, **fields) as service, sdk(service) as client:
        before = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        asked: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": "How do I file a chargeback?"}
        ]
        refused = await client.chat.completions.create(model="faq-bot", messages=asked)
        assert refused.choices[0].message.content == BLOCKED_REPLY
        assert refused.choices[0].finish_reason == "content_filter"
        stream = await client.chat.completions.create(model="faq-bot", messages=asked, stream=True)
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == BLOCKED_REPLY
        assert chunks[-1].choices[0].finish_reason == "content_filter"
        assert llm.calls == []
        after = counts("studio_turns_total", channel=("api",), outcome=OUTCOMES)
        assert moved(before, after) == {"api/blocked": 2}


async def test_a_stream_nobody_watches_any_more_still_finishes_and_is_kept(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with live_service(tmp_path, llm) as service:
        runtime = service.app.state.services.runtime
        who = await service.app.state.services.ops.authenticate(service.key)
        bot = await resolve(runtime, team_id=who.team_id, name="faq-bot", env="production")
        llm.reply("Five days.", delay_s=0.3)
        asked = ApiAsk("Refunds?", (), None, who.identity, "chatcmpl-gone")
        answer = ApiTurns(runtime).stream(bot, asked)
        head = ChatCompletionChunkOut(id="chatcmpl-gone", created=0, model="faq-bot", choices=[])
        events = completion_events(head, answer, include_usage=False)
        assert '"role":"assistant"' in await anext(events)
        watcher = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.05)
        watcher.cancel()  # the client went away mid-stream
        with pytest.raises(asyncio.CancelledError):
            await watcher
        assert (await answer.output()).reply == "Five days."
        [kept] = await _api_conversations(service)
        assert kept["messages"] == 2


async def test_a_per_user_limit_is_a_429_per_person(tmp_path: Path, llm: FakeLLM) -> None:
    fields = {"budget": {"per_user_per_minute": 1}}
    async with live_service(tmp_path, llm, **fields) as service, sdk(service) as client:
        asked: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
        await client.chat.completions.create(model="faq-bot", messages=asked, user="alice")
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="faq-bot", messages=asked, user="alice")
        assert limited.value.code == "rate_limit_exceeded"
        assert limited.value.response.headers["x-should-retry"] == "false"
        await client.chat.completions.create(model="faq-bot", messages=asked, user="bob")
        assert len(llm.calls) == 2


def test_the_readme_example_runs_against_a_served_bot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's Python example, as written, against `main.py serve` on a real port."""
    example = _fence("Every bot is an OpenAI-compatible API", "python")
    with serving(tmp_path) as base:
        key = (tmp_path / "data" / "local.key").read_text().strip()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as rest:
            assert rest.post("/api/v1/bots/import", json=spec_data()).status_code < 300
            for env in ("staging", "production"):
                promoted = rest.post("/api/v1/bots/faq-bot/promote", json={"to": env})
                assert promoted.status_code == 200, promoted.text
        exec(example.replace("http://127.0.0.1:8000", base), {"KEY": key})
    printed = capsys.readouterr().out
    assert printed.count("I can't answer that yet.") == 2  # the offline model's fallback
    assert "cost_usd" in printed and "['faq-bot', 'faq-bot@staging']" in printed
