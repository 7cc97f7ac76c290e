"""Why did the bot say that? A router + retrieve + tool pipeline answers, and `/trace` (and
`GET /api/v1/bots/{bot}/traces`) shows each step: the branch and why, the passage and its score,
the prompt's size, the tool call with its outcome and time, tokens and cost. Traces are kept with
the turn and go with it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from studio.commands import TraceShow, TryBot
from studio.grammar import parse
from tests.conftest import running_service, service_settings
from tests.counters import count, counts, moved
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.openapi import FakeOpenApi
from tests.fakes.otlp import FakeOtlp
from tests.scenarios.test_readme import _fence

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
MODEL = "openai/fake-model"
TRACES = "/api/v1/bots/shop-bot/traces"
SHOP: dict[str, Any] = {
    "name": "shop-bot",
    "model": MODEL,
    "fallback": "Sorry, I can't help with that.",
    "pipeline": [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "order", "to": "kb"}], "default": "hello"},
        },
        {"id": "kb", "kind": "retrieve", "params": {"min_score": 0.0}, "next": "answer"},
        {"id": "answer", "kind": "llm"},
        {"id": "hello", "kind": "template", "params": {"text": "Ask me about your order."}},
    ],
}


def _readme_sample() -> str:
    """The `/trace` answer shown under README's "Why did it say that?" (its `you>` lines apart)."""
    block = _fence("Why did it say that? Traces, telemetry and metrics", "text")
    return "\n".join(line for line in block.splitlines() if not line.startswith("you> "))


def _shapes(answer: str) -> list[str]:
    """Each line of a trace up to its first number: what the README must show as it is."""
    return [re.split(r"\d", line, maxsplit=1)[0] for line in answer.splitlines()]


def test_the_readme_lines_are_commands() -> None:
    block = _fence("Why did it say that? Traces, telemetry and metrics", "text")
    said = [
        line.removeprefix("you> ").split("  (")[0].strip()
        for line in block.splitlines()
        if line.startswith("you> ")
    ]
    assert [parse(line, bots={"shop-bot"}) for line in said] == [
        TryBot(bot="shop-bot", message="where is my order B2?"),
        TraceShow(bot="shop-bot"),
        TraceShow(bot="shop-bot", conversation=42),
    ]


@pytest.fixture
async def service(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url, allow_private_urls=True)
    async with running_service(settings) as running:
        yield running


async def shop_bot(service: Service, openapi: FakeOpenApi) -> None:
    await service.call("POST", "/api/v1/bots/import", json=SHOP)
    added = await service.reply(f"/tool shop-bot add {openapi.url}/openapi.json getOrder")
    assert "Added the tool" in added
    known = await service.reply("/knowledge shop-bot add Orders ship within two days of payment.")
    assert "shop-bot" in known


async def test_trace_shows_each_step_of_a_router_retrieve_and_tool_turn(
    service: Service, openapi: FakeOpenApi, llm: FakeLLM
) -> None:
    await shop_bot(service, openapi)
    llm.tool_calls(("getOrder", {"id": "B2"}))
    llm.reply("Order B2 has shipped.")
    tried = await service.reply("/try shop-bot where is my order B2?")
    assert "Order B2 has shipped." in tried

    shown = await service.reply("/trace shop-bot")
    lines = shown.splitlines()
    assert lines[0].startswith("*Trace* · conversation ") and "(your /try sandbox) · draft" in shown
    assert "> where is my order B2?" in lines
    router = next(line for line in lines if line.startswith("1. `triage` router"))
    assert router.endswith('→ `kb` (keyword "order")')
    retrieve = next(line for line in lines if line.startswith("2. `kb` retrieve"))
    assert "1 passage: [1] " in retrieve and "→ `answer`" in retrieve
    model = next(line for line in lines if line.startswith("3. `answer` llm"))
    assert f"{MODEL}, prompt of 3 messages" in model and "1 passage), 2 model calls" in model
    assert "tokens" in model
    tool = lines[lines.index(model) + 1]
    assert tool.startswith("   tool `getOrder`: ok, ") and "(HTTP 200)" in tool
    assert lines[-1].startswith("*Answer* (") and lines[-1].endswith("Order B2 has shipped.")
    assert _shapes(shown) == _shapes(_readme_sample()), "README's /trace sample is out of date"

    got = await service.call("GET", TRACES)
    (turn,) = got["turns"]
    assert (turn["channel"], turn["version"], turn["model"]) == ("sandbox", None, MODEL)
    assert turn["user_message"] == "where is my order B2?"
    steps = turn["steps"]
    assert [(s["id"], s["kind"]) for s in steps] == [
        ("triage", "router"),
        ("kb", "retrieve"),
        ("answer", "llm"),
    ]
    assert steps[0]["detail"] == {"branch": 0, "to": "kb", "why": 'keyword "order"'}
    (passage,) = steps[1]["detail"]["passages"]
    assert passage["snippet"] == "Orders ship within two days of payment."
    assert 0 < passage["score"] <= 1
    (call,) = steps[2]["tools"]
    assert (call["function"], call["status"]) == ("getOrder", "ok") and call["ms"] >= 0
    assert steps[2]["detail"]["calls"] == 2 and steps[2]["prompt_tokens"] > 0
    assert steps[0]["at_ms"] <= steps[1]["at_ms"] <= steps[2]["at_ms"]
    assert sum(s["ms"] for s in steps) <= turn["latency_ms"]


async def test_a_failed_step_and_a_guard_s_refusal_are_shown_plainly(
    service: Service, openapi: FakeOpenApi, llm: FakeLLM
) -> None:
    await shop_bot(service, openapi)
    llm.fail(400, error="the model does not exist")
    await service.reply("/try shop-bot where is my order?")
    failed = (await service.reply("/trace shop-bot")).splitlines()
    model = next(line for line in failed if line.startswith("3. `answer` llm"))
    assert "cost unknown" in model
    assert failed[failed.index(model) + 1].startswith("   ✗ bad_request: ")
    assert failed[-2].endswith("Sorry, I can't help with that.")  # the fallback
    assert failed[-1].startswith("✗ The turn failed: bad_request: ")

    await service.reply('/guard shop-bot block "refund"')
    await service.reply("/try shop-bot I want a refund")
    refused = await service.reply("/trace shop-bot last")
    assert "No step ran: the `blocked_term` guard answered first." in refused
    (turn, *_) = (await service.call("GET", TRACES))["turns"]
    assert turn["steps"] == [] and turn["error"] == "blocked: blocked_term"


async def test_live_turns_are_traced_by_conversation_and_go_with_the_person(
    service: Service, openapi: FakeOpenApi, llm: FakeLLM
) -> None:
    await shop_bot(service, openapi)
    await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": "staging"})
    await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": "production"})
    web = await service.call("POST", "/api/v1/bots/shop-bot/deployments", json={"channel": "web"})
    first = (await service.chat(web["id"], "hi")).json()
    await service.chat(web["id"], "hello again", first["session"])
    other = (await service.chat(web["id"], "hey")).json()
    assert other["reply"] == "Ask me about your order."
    async with service.app.state.core.db.read_conn() as conn:
        bot = str((await conn.execute(text("select id from bot"))).scalar_one())
    before = counts("studio_tokens_total", bot=(bot,), kind=("prompt", "completion"))
    unknown = count("studio_unknown_cost_turns_total", bot=bot)
    llm.reply("Orders ship within two days.")
    asked = (await service.chat(web["id"], "when does my order ship?")).json()
    spent = moved(before, counts("studio_tokens_total", bot=(bot,), kind=("prompt", "completion")))
    (answer,) = (await service.call("GET", TRACES, params={"limit": 1}))["turns"]
    assert answer["message_id"] == asked["message_id"]
    assert spent == {
        f"{bot}/prompt": answer["prompt_tokens"],
        f"{bot}/completion": answer["completion_tokens"],
    }
    assert count("studio_unknown_cost_turns_total", bot=bot) == unknown + 1  # fake-model: no price
    metrics = (await service.client.get("/metrics")).text
    assert f'studio_tokens_total{{bot="{bot}",kind="prompt"}}' in metrics

    latest = await service.call("GET", TRACES, params={"limit": 2})
    newest = latest["turns"][1]
    assert newest["user_message"] == "hey" and newest["version"] == 1
    assert newest["steps"][0]["detail"]["why"] == "no route matched"
    conversation = newest["conversation_id"] - 1
    both = await service.call("GET", TRACES, params={"conversation": conversation})
    assert [t["user_message"] for t in both["turns"]] == ["hello again", "hi"]
    shown = await service.reply(f"/trace shop-bot {conversation}")
    assert shown.count("*Trace* · conversation") == 2 and "(web) · v1" in shown
    assert shown.index("> hi") < shown.index("> hello again")  # oldest first, to read

    viewer = (
        await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    ).key
    assert (await service.call("GET", TRACES, key=viewer))["turns"]
    acme = (await service.app.state.core.ops.create_team("acme")).key
    hidden = await service.client.get(TRACES, headers=service.auth(acme))
    assert hidden.status_code == 404
    missing = await service.client.get(
        TRACES, params={"conversation": 99999}, headers=service.auth()
    )
    assert missing.status_code == 404 and "no answered conversation 99999" in missing.text
    for bad in ({"conversation": "x"}, {"limit": 0}, {"limit": 101}):
        assert (
            await service.client.get(TRACES, params=bad, headers=service.auth())
        ).status_code == 422
    assert "no answered conversation 99999" in await service.reply("/trace shop-bot 99999")
    assert "Say `last` or a conversation's number" in await service.reply("/trace shop-bot first")

    deleted = await service.client.delete(
        f"/api/v1/bots/shop-bot/participants/web:{other['session'][:12]}", headers=service.auth()
    )
    assert deleted.status_code < 300, deleted.text
    after = await service.call("GET", TRACES)
    assert "hey" not in [t["user_message"] for t in after["turns"]]


async def test_a_bot_that_has_not_answered_yet_says_so(service: Service) -> None:
    await service.import_bot("quiet-bot")
    shown = await service.reply("/trace quiet-bot last")
    assert shown == (
        "*quiet-bot* has not answered anyone yet: try it with `/try quiet-bot hello`, "
        "then `/trace quiet-bot`."
    )
    assert (await service.call("GET", "/api/v1/bots/quiet-bot/traces"))["turns"] == []


async def test_turns_go_to_an_otlp_collector_as_genai_spans(
    tmp_path: Path, llm: FakeLLM, openapi: FakeOpenApi, otlp: FakeOtlp
) -> None:
    settings = service_settings(
        tmp_path, llm_api_base=llm.base_url, allow_private_urls=True, otel_endpoint=otlp.url
    )
    async with running_service(settings) as service:
        await shop_bot(service, openapi)
        llm.tool_calls(("getOrder", {"id": "B2"}))
        llm.reply("Order B2 has shipped.")
        await service.reply("/try shop-bot where is my order B2?")
        (turn,) = (await service.call("GET", TRACES))["turns"]
    # Stopping the service sent what was queued, through the SDK's real OTLP/HTTP exporter.
    assert set(otlp.content_types) == {"application/x-protobuf"}
    spans = {span.name: span for span in otlp.spans}
    assert list(spans) == [
        "router triage",
        "retrieve kb",
        "execute_tool getOrder",
        "chat openai/fake-model",
        "invoke_agent shop-bot",
    ]
    root = spans["invoke_agent shop-bot"]
    assert root.parent_id == "" and root.service == "chat-studio"
    assert {k: root.attributes[k] for k in ("gen_ai.operation.name", "gen_ai.agent.name")} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "shop-bot",
    }
    assert root.attributes["studio.mode"] == "try" and root.attributes["studio.step"] == "answer"
    assert root.attributes["gen_ai.usage.input_tokens"] == turn["prompt_tokens"]
    chat = spans["chat openai/fake-model"]
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.model"] == MODEL
    assert chat.attributes["gen_ai.usage.output_tokens"] == turn["steps"][2]["completion_tokens"]
    tool = spans["execute_tool getOrder"]
    assert tool.attributes["gen_ai.tool.name"] == "getOrder"
    assert tool.attributes["studio.tool.status"] == "ok" and tool.status == 0
    assert spans["retrieve kb"].attributes["studio.retrieve.passages"] == 1
    assert spans["router triage"].attributes["studio.router.to"] == "kb"
    for name, parent in [
        ("router triage", root),
        ("retrieve kb", root),
        ("chat openai/fake-model", root),
        ("execute_tool getOrder", chat),
    ]:
        child = spans[name]
        assert child.trace_id == root.trace_id and child.parent_id == parent.span_id
        assert parent.start_ns <= child.start_ns <= child.end_ns <= parent.end_ns
