"""A support bot that is a flow: billing questions to a billing template, the person's name and
email remembered, a greeting by name next time; tested per path, promoted, and answering end users
on the web and on Telegram (the real aiogram against the fake Bot API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, secret_headers, token

PUBLIC = "https://studio.example.com"
SUPPORT: dict[str, Any] = {
    "name": "support-bot",
    "model": "offline",
    "fallback": "Let me find someone for that.",
    "pipeline": [
        {
            "id": "triage",
            "kind": "router",
            "params": {
                "routes": [
                    {"keyword": "invoice", "to": "billing"},
                    {"regex": r"(?i)\bbill(ing)?\b", "to": "billing"},
                    {"participant": "name", "is": "set", "to": "welcome"},
                ],
                "default": "remember",
            },
        },
        {
            "id": "billing",
            "kind": "template",
            "params": {"text": "Billing help for {{ participant.name or 'you' }}: see /invoices."},
        },
        {
            "id": "remember",
            "kind": "extract",
            "params": {
                "fields": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "pattern": r"(?i)my name is (\w+)"},
                        "email": {"type": "string", "format": "email"},
                    },
                }
            },
            "next": "ask",
        },
        {
            "id": "ask",
            "kind": "template",
            "params": {
                "text": "{% if participant.name %}Thanks, {{ participant.name }}!"
                "{% else %}What's your name?{% endif %}"
            },
        },
        {
            "id": "welcome",
            "kind": "template",
            "params": {"text": "Welcome back, {{ participant.name }}!"},
        },
    ],
    "tests": [
        {
            "turns": ["I have a question about my invoice"],
            "expect": {"kind": "step", "value": "billing"},
        },
        {
            "turns": ["Hi, my name is Ana"],
            "expect": {"kind": "contains", "value": "Thanks, Ana"},
            "step": "ask",
        },
        {
            "turns": ["my name is Ana", "hello again"],
            "expect": {"kind": "contains", "value": "Welcome back, Ana"},
        },
    ],
}


@pytest.fixture
async def service(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url, llm_api_base=llm.base_url
    )
    async with running_service(settings) as running:
        yield running


async def go_live(service: Service, **deployment: str) -> dict[str, Any]:
    """Promote the draft (its tests run first and must pass) to production, and deploy it."""
    await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": "staging"})
    await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": "production"})
    path = "/api/v1/bots/support-bot/deployments"
    return await service.call("POST", path, json=deployment)  # type: ignore[no-any-return]


async def test_each_path_is_tested_then_the_flow_answers_on_the_web(service: Service) -> None:
    await service.call("POST", "/api/v1/bots/import", json=SUPPORT)
    report = await service.call("POST", "/api/v1/bots/support-bot/tests/run")
    assert [r["outcome"] for r in report["results"]] == ["pass", "pass", "pass"], report
    deployment = (await go_live(service, channel="web"))["id"]

    billing = (await service.chat(deployment, "Where is my bill?")).json()
    assert billing["reply"] == "Billing help for you: see /invoices."
    session = billing["session"]
    asked = await service.chat(deployment, "hello", session)
    assert asked.json()["reply"] == "What's your name?"
    told = await service.chat(deployment, "My name is Ana, ana@example.com", session)
    assert told.json()["reply"] == "Thanks, Ana!"
    again = await service.chat(deployment, "anyone there?", session)
    assert again.json()["reply"] == "Welcome back, Ana!"
    invoice = await service.chat(deployment, "and my invoice?", session)
    assert invoice.json()["reply"] == "Billing help for Ana: see /invoices."

    user = (await service.call("GET", "/api/v1/bots/support-bot/conversations"))[0]["user"]
    remembered = await service.call("GET", f"/api/v1/bots/support-bot/participants/{user}")
    assert remembered["memory"][0]["values"] == {"name": "Ana", "email": "ana@example.com"}


async def test_the_flow_remembers_a_telegram_user_into_their_next_conversation(
    service: Service, telegram: FakeTelegram
) -> None:
    bot_token = token(7)
    telegram.add_bot(bot_token, username="support_bot")
    await service.call("POST", "/api/v1/bots/import", json=SUPPORT)
    deployed = await go_live(service, channel="telegram", token=bot_token)
    hook = telegram.webhook(bot_token)
    assert hook is not None
    headers = secret_headers(str(hook["secret_token"]))

    async def say(text: str, count: int) -> str:
        update = message_update(text, chat_id=55, user_id=55)
        response = await service.client.post(
            f"/telegram/bots/{deployed['id']}", json=update, headers=headers
        )
        assert response.status_code == 200
        await telegram.wait_for("sendMessage", count, token=bot_token, timeout_s=15)
        return str(telegram.calls_to("sendMessage", token=bot_token)[-1].body["text"])

    assert await say("hi", 1) == "What's your name?"
    assert await say("my name is Bo", 2) == "Thanks, Bo!"
    assert (await say("/reset", 3)).startswith("Hi")  # a new conversation, the greeting
    assert await say("hello", 4) == "Welcome back, Bo!"


async def test_a_path_that_answers_from_the_wrong_step_stops_the_promotion(
    service: Service,
) -> None:
    wrong = {"turns": ["my invoice"], "expect": {"kind": "step", "value": "welcome"}}
    await service.call("POST", "/api/v1/bots/import", json={**SUPPORT, "tests": [wrong]})
    response = await service.client.post(
        "/api/v1/bots/support-bot/promote", json={"to": "staging"}, headers=service.auth()
    )
    assert response.status_code == 409
    assert "expected step 'welcome' to answer; step 'billing' did" in response.json()["error"]
    assert await service.call("GET", "/api/v1/bots/support-bot/versions") == []


async def test_a_deleted_bot_s_remembered_people_are_not_a_new_bot_s(
    service: Service, telegram: FakeTelegram
) -> None:
    """SQLite gives a deleted bot's id to the next bot: nothing the old one remembered (in the
    database or in the runtime's cache) reaches the new one's end users."""
    bot_token = token(8)
    telegram.add_bot(bot_token, username="support_bot")
    said = 0

    async def say(deployment: str, text: str) -> str:
        nonlocal said
        said += 1
        hook = telegram.webhook(bot_token)
        assert hook is not None
        response = await service.client.post(
            f"/telegram/bots/{deployment}",
            json=message_update(text, chat_id=56, user_id=56),
            headers=secret_headers(str(hook["secret_token"])),
        )
        assert response.status_code == 200
        await telegram.wait_for("sendMessage", said, token=bot_token, timeout_s=15)
        return str(telegram.calls_to("sendMessage", token=bot_token)[-1].body["text"])

    runtime = service.app.state.core.runtime
    await service.call("POST", "/api/v1/bots/import", json=SUPPORT)
    first = (await go_live(service, channel="telegram", token=bot_token))["id"]
    assert await say(first, "my name is Bo") == "Thanks, Bo!"
    old_id = (await runtime.target(first)).bot_id
    await service.call("DELETE", "/api/v1/bots/support-bot")
    await service.call("POST", "/api/v1/bots/import", json=SUPPORT)
    again = (await go_live(service, channel="telegram", token=bot_token))["id"]
    assert (await runtime.target(again)).bot_id == old_id  # the case this guards against
    assert await say(again, "hello") == "What's your name?"


async def test_a_turn_stores_only_what_it_changed_in_a_person_s_memory(service: Service) -> None:
    """What another writer put in the memory while a turn ran (a builder's edit, the same
    person's turn in another thread) is kept: the turn merges its own changes into the row."""
    from storage import participants as participant_store

    await service.call("POST", "/api/v1/bots/import", json=SUPPORT)
    deployment = (await go_live(service, channel="web"))["id"]
    first = (await service.chat(deployment, "hello")).json()
    assert first["reply"] == "What's your name?"  # the runtime has read (and cached) no name
    core = service.app.state.core
    user = (await service.call("GET", "/api/v1/bots/support-bot/conversations"))[0]["user"]
    bot_id = (await core.runtime.target(deployment)).bot_id

    def elsewhere(conn: Any) -> None:  # a write the runtime's cache has not seen
        participant_store.save(conn, bot_id=bot_id, channel="web", user=user, data={"plan": "pro"})

    await core.db.run_write(elsewhere)
    told = await service.chat(deployment, "my name is Ana", first["session"])
    assert told.json()["reply"] == "Thanks, Ana!"
    remembered = await service.call("GET", f"/api/v1/bots/support-bot/participants/{user}")
    assert remembered["memory"][0]["values"] == {"plan": "pro", "name": "Ana"}
