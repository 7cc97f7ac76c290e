"""Free text through the builder model: the fake OpenAI-compatible server scripts tool calls, the
Studio runs them as commands with the caller's role and confirmations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM, ToolCall


@pytest.fixture
async def studio(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, builder_model="openai/builder", llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        yield service


async def _bot(service: Service, name: str) -> int:
    response = await service.client.get(f"/api/v1/bots/{name}", headers=service.auth())
    return response.status_code


async def test_one_tool_call_creates_a_bot(studio: Service, llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", {"bot": "acme-support", "description": "Support for Acme"}))
    reply = await studio.reply("I need a bot for Acme's support desk")
    assert "acme-support" in reply
    assert await _bot(studio, "acme-support") == 200
    body = llm.calls[-1].body
    names = {t["function"]["name"] for t in body["tools"]}
    assert {"newbot", "set", "promote", "deploy", "test_add"} <= names
    assert "join" not in names
    assert body["model"] == "builder"


async def test_a_multi_step_request_reports_each_step(studio: Service, llm: FakeLLM) -> None:
    llm.tool_calls(
        ("newbot", {"bot": "support-bot", "description": "Support for Acme"}),
        ("set", {"field": "prompt", "value": "You are polite and helpful."}),
        ("set", {"bot": "support-bot", "field": "model", "value": "openai/gpt-4o"}),
        ("deploy", {"bot": "support-bot", "channel": "web"}),
    )
    reply = await studio.reply(
        "create a support bot for Acme, make it polite, use gpt-4o and deploy it to the web"
    )
    assert "Step 1/4" in reply and "Step 2/4" in reply and "Step 3/4" in reply
    assert "Step 4/4 failed" in reply and "promote" in reply
    draft = (await studio.call("GET", "/api/v1/bots/support-bot"))["draft"]
    assert draft["prompt"] == "You are polite and helpful."
    assert draft["model"] == "openai/gpt-4o"


async def test_malformed_tool_arguments_change_nothing(studio: Service, llm: FakeLLM) -> None:
    llm.tool_calls(ToolCall("newbot", '{"bot": '))
    reply = await studio.reply("make me a bot")
    assert "malformed" in reply and "Nothing was changed" in reply
    llm.tool_calls(("newbot", {"bot": "ok-bot"}), ("set", {"field": "colour", "value": "red"}))
    reply = await studio.reply("make ok-bot red")
    assert "Nothing was changed" in reply
    llm.tool_calls(("format_disk", {}))
    assert "unknown action" in await studio.reply("wipe everything")
    assert (await studio.call("GET", "/api/v1/bots")) == []


async def test_destructive_tool_calls_ask_for_confirmation(studio: Service, llm: FakeLLM) -> None:
    await studio.reply("/newbot old-bot")
    llm.tool_calls(("delete", {"bot": "old-bot"}))
    asked = await studio.say("get rid of old-bot")
    assert [b["label"] for b in asked["messages"][-1]["buttons"]] == ["Confirm", "Cancel"]
    assert await _bot(studio, "old-bot") == 200
    assert "Deleted" in await studio.reply("yes")
    assert await _bot(studio, "old-bot") == 404


async def test_the_model_never_bypasses_a_role(studio: Service, llm: FakeLLM) -> None:
    llm.tool_calls(("newbot", {"bot": "sneaky-bot"}))
    reply = await studio.reply("create sneaky-bot for me", user="visitor")
    assert "editor role" in reply
    assert await _bot(studio, "sneaky-bot") == 404


async def test_questions_get_the_models_words(studio: Service, llm: FakeLLM) -> None:
    llm.reply("Promoting to staging freezes the draft into a new version.")
    reply = await studio.reply("what does promoting do?")
    assert reply == "Promoting to staging freezes the draft into a new version."


async def test_a_failing_model_gets_a_clear_answer(studio: Service, llm: FakeLLM) -> None:
    llm.fail(401, error="bad key")
    reply = await studio.reply("please make a bot")
    assert "could not reach the builder model" in reply and "auth" in reply
    assert (await studio.call("GET", "/api/v1/bots")) == []


async def test_commands_do_not_call_the_model(studio: Service, llm: FakeLLM) -> None:
    await studio.reply("/newbot faq-bot")
    await studio.reply("show faq-bot")
    assert llm.calls == []


async def test_steps_after_a_confirmation_wait_for_it(studio: Service, llm: FakeLLM) -> None:
    await studio.reply("/newbot acme")
    await studio.reply("/promote acme")
    llm.tool_calls(
        ("promote", {"bot": "acme", "to": "production"}),
        ("deploy", {"bot": "acme", "channel": "web"}),
    )
    reply = await studio.reply("put acme live on the web")
    assert "Step 1/2" in reply and "Confirm" in reply and "Step 2 was not run." in reply
    assert await studio.call("GET", "/api/v1/deployments") == []
    assert "production now runs v1" in await studio.reply("yes")
