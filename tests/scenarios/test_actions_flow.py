"""The issue's whole story, as a team would live it: a bot given an OpenAPI tool, an MCP tool and
a handoff target by chatting with the Studio (as the Slack workspace's team), tested, promoted,
and answering end users on the web with what the tools found, or with a person of the team from a
Slack thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.openapi import FakeOpenApi
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import event_body, message_event
from tests.scenarios.test_handoff_flow import (
    as_the_workspace,
    eventually,
    history,
    post,
    slack_settings,
    the_thread,
)

if TYPE_CHECKING:
    from tests.fakes.mcp import FakeMcp

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
MODEL = "openai/fake-model"
KEY = "crm-key-0a1b2c3d"


@pytest.fixture
async def service(tmp_path: Path, slack: FakeSlack, llm: FakeLLM) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    settings = slack_settings(
        tmp_path,
        slack,
        slack_owners="U0001",
        llm_api_base=llm.base_url,
        allow_private_urls=True,  # the fake services are on 127.0.0.1
    )
    async with running_service(settings) as running:
        yield await as_the_workspace(running)


async def test_a_bot_with_two_tools_and_a_person_behind_it(
    service: Service, openapi: FakeOpenApi, mcp_server: FakeMcp, llm: FakeLLM, slack: FakeSlack
) -> None:
    studio = service.reply
    await service.call("PUT", "/api/v1/secrets/acme-crm", json={"value": KEY})
    await studio("/newbot shop-bot")
    await studio(f"/set shop-bot model {MODEL}")
    added = await studio(f"/tool shop-bot add {openapi.url}/openapi.json getOrder --auth acme-crm")
    assert "`getOrder` (reads)" in added
    assert "`get_weather` (reads)" in await studio(
        f"/tool shop-bot add-mcp {mcp_server.url} get_weather --name weather"
    )
    assert "#support" in await studio("/handoff shop-bot to #support")
    listed = await studio("/tool shop-bot list")
    assert "OpenAPI at 127.0.0.1" in listed and "MCP at 127.0.0.1" in listed

    # a test case that uses a tool, run before promotion like any other
    await studio('/test shop-bot add "where is B2?" expect contains "shipped"')
    llm.tool_calls(("getOrder", {"id": "B2"}))
    llm.reply("B2 has shipped.")
    report = await service.call("POST", "/api/v1/bots/shop-bot/tests/run")
    assert [r["outcome"] for r in report["results"]] == ["pass"], report
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": env})
    web = await service.call("POST", "/api/v1/bots/shop-bot/deployments", json={"channel": "web"})

    # end users: an answer from each tool, then a person
    llm.tool_calls(("getOrder", {"id": "A1"}))
    llm.reply("A1 is open.")
    first = (await service.chat(web["id"], "and A1?")).json()
    assert first["reply"] == "A1 is open."
    session = first["session"]
    assert openapi.requests[-1].headers["authorization"] == f"Bearer {KEY}"

    llm.tool_calls(("get_weather", {"city": "Porto"}))
    llm.reply("Sunny in Porto.")
    assert (await service.chat(web["id"], "weather?", session)).json()["reply"] == "Sunny in Porto."
    assert [call.name for call in mcp_server.calls] == ["get_weather"]

    llm.tool_calls(("handoff", {"reason": "wants a refund exception"}))
    handed = (await service.chat(web["id"], "I want a person", session)).json()
    assert handed["handoff"] is True and "person" in handed["reply"]
    (announced,) = slack.calls_to("chat.postMessage")
    assert "Why: wants a refund exception" in announced.body["text"]
    thread = await the_thread(service)
    reply = message_event(
        "Hi, Sam here: done.",
        user="U0009",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    assert (await post(service, event_body(reply))).status_code == 200

    async def from_sam() -> Any:
        messages = (await history(service, web["id"], session))["messages"]
        return messages[-1]["role"] == "human" and "Sam here" in messages[-1]["text"]

    await eventually(from_sam, "Sam's answer on the web")
    stored = await service.call("GET", "/api/v1/bots/shop-bot/export")
    assert KEY not in str(stored)
