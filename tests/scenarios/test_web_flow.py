"""A newcomer's flow: import, promote, deploy to the web, chat with history, stats and audit,
through a restart, with a real model call (litellm to the fake OpenAI-compatible server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import (
    drop_postgres_database,
    fresh_postgres_database,
    running_service,
    service_settings,
)
from tests.fakes.llm import FakeLLM


async def test_import_promote_deploy_chat_restart_stats_audit(tmp_path: Path, llm: FakeLLM) -> None:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        deployment = await service.live_web_bot(
            model="openai/fake-model", prompt="You are Acme's helper.", history=5
        )
        llm.reply("Refunds take 5 days.", prompt_tokens=20, completion_tokens=6)
        first = await service.chat(deployment, "How long do refunds take?")
        assert first.status_code == 200, first.text
        assert first.json()["reply"] == "Refunds take 5 days."
        session = first.json()["session"]

    # a restart between two turns: nothing lost, nothing repeated
    async with running_service(settings) as service:
        llm.reply("Yes, by card too.")
        second = await service.chat(deployment, "By card as well?", session)
        assert second.json() == {
            "session": session,
            "reply": "Yes, by card too.",
            "html": "<p>Yes, by card too.</p>\n",
            "handoff": False,  # no person of the team has this conversation
            "message_id": 4,  # the answer, after the first turn's two messages and the question
        }
        sent = llm.calls[-1].messages
        assert [(m["role"], m["content"]) for m in sent] == [
            ("system", "You are Acme's helper."),
            ("user", "How long do refunds take?"),
            ("assistant", "Refunds take 5 days."),
            ("user", "By card as well?"),
        ]
        assert llm.calls[-1].body["model"] == "fake-model"
        assert len(llm.calls) == 2

        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats?period=24h")
        assert stats["turns"] == 2 and stats["conversations"] == 1 and stats["errors"] == 0
        assert stats["prompt_tokens"] == 32 and stats["completion_tokens"] == 11
        assert stats["cost_usd"] is None and stats["unknown_cost_turns"] == 2
        actions = [e["action"] for e in await service.call("GET", "/api/v1/audit")]
        assert actions[:4] == ["deploy", "bot.promote", "bot.promote", "bot.import"]


async def test_a_failing_provider_gets_the_fallback_and_is_counted(
    tmp_path: Path, llm: FakeLLM
) -> None:
    settings = service_settings(
        tmp_path, llm_api_base=llm.base_url, llm_timeout_s=0.3, llm_deadline_s=1.5
    )
    async with running_service(settings) as service:
        deployment = await service.live_web_bot(model="openai/fake-model", fallback="Sorry, later.")
        llm.stall(2.0, times=10)
        answer = await service.chat(deployment, "hello?")
        assert answer.status_code == 200
        assert answer.json()["reply"] == "Sorry, later."
        llm.reset()
        llm.fail(500, times=10)
        assert (await service.chat(deployment, "and now?")).json()["reply"] == "Sorry, later."
        assert 1 < len(llm.calls) <= 4  # retried, then gave up within the deadline
        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
        assert stats["turns"] == 2 and stats["errors"] == 2
        metrics = (await service.client.get("/metrics")).text
        assert 'studio_llm_errors_total{kind="timeout"}' in metrics
        llm.reset()
        assert (await service.chat(deployment, "back?")).json()["reply"] == "echo: back?"
        assert (await service.client.get("/healthz")).status_code == 200


@pytest.mark.postgres
async def test_the_same_flow_on_postgresql(tmp_path: Path, llm: FakeLLM, postgres_url: str) -> None:
    url = await fresh_postgres_database(postgres_url)
    try:
        settings = service_settings(
            tmp_path, database_url=url, secret_key="test-secret", llm_api_base=llm.base_url
        )
        async with running_service(settings) as service:
            deployment = await service.live_web_bot(model="openai/fake-model", history=3)
            first = (await service.chat(deployment, "one")).json()
            assert first["reply"] == "echo: one"
        async with running_service(settings) as service:  # restart: migrations are a no-op
            second = (await service.chat(deployment, "two", first["session"])).json()
            assert second["reply"] == "echo: two"
            assert [m["content"] for m in llm.calls[-1].messages][1:] == ["one", "echo: one", "two"]
            stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
            assert stats["turns"] == 2 and stats["conversations"] == 1
    finally:
        await drop_postgres_database(postgres_url, url)
