"""A newcomer's flow through the Studio alone: build a bot by conversation, test it, promote it
(with the confirmation), deploy it to the web, chat with it over the chat API, see the turns in
/stats. On SQLite, and on PostgreSQL when available; through a restart (stored confirmations)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from studio.settings import Settings
from tests.conftest import (
    drop_postgres_database,
    fresh_postgres_database,
    running_service,
    service_settings,
)
from tests.factories import Service
from tests.fakes.llm import FakeLLM


async def _report(service: Service) -> str:
    for _ in range(200):
        found = [t for t in await service.notices() if "tests:" in t]
        if found:
            return found[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("no test report")


async def _flow(settings: Settings, llm: FakeLLM) -> None:
    async with running_service(settings) as service:
        assert "faq-bot" in await service.reply(
            "create a bot called faq-bot that answers refund questions"
        )
        await service.reply("set the model to openai/fake-model")
        await service.reply("/set prompt You answer questions about Acme's refunds, briefly.")
        await service.reply('/test add "How long do refunds take?" expect contains "5 days"')

        llm.reply("Refunds take 5 days.")
        assert "Refunds take 5 days." in await service.reply("/try How long do refunds take?")

        llm.reply("Refunds take 5 days to arrive.")
        await service.reply("/test")
        assert "1 passed, 0 failed" in await _report(service)
        assert "v1" in await service.reply("/promote")
        asked = await service.say("/promote faq-bot production")
        assert asked["messages"][0]["buttons"][0]["label"] == "Confirm"

    # a restart between the question and the answer: the confirmation is stored
    async with running_service(settings) as service:
        assert "production now runs v1" in await service.reply("yes")
        deployed = await service.reply("deploy faq-bot to the web")
        deployment = deployed.split("/chat/")[1].split()[0].rstrip(".")

        llm.reply("Five days, by card or bank transfer.")
        chat = await service.chat(deployment, "How long for a refund?")
        assert chat.json()["reply"] == "Five days, by card or bank transfer."
        llm.reply("You're welcome.")
        await service.chat(deployment, "Thanks!", chat.json()["session"])

        stats = await service.reply("how is faq-bot doing?")
        assert "Turns" in stats and "2" in stats
        rest = await service.call("GET", "/api/v1/bots/faq-bot/stats?period=24h")
        assert rest["turns"] == 2 and rest["conversations"] == 1  # /try is not counted


async def test_build_test_promote_deploy_chat_stats(tmp_path: Path, llm: FakeLLM) -> None:
    await _flow(service_settings(tmp_path, llm_api_base=llm.base_url), llm)


@pytest.mark.postgres
async def test_the_studio_flow_on_postgresql(
    tmp_path: Path, llm: FakeLLM, postgres_url: str
) -> None:
    url = await fresh_postgres_database(postgres_url)
    try:
        settings = service_settings(
            tmp_path, database_url=url, secret_key="test-secret", llm_api_base=llm.base_url
        )
        await _flow(settings, llm)
    finally:
        await drop_postgres_database(postgres_url, url)
