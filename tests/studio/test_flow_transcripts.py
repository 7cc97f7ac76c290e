"""Flows built by conversation: lines sent to the Studio over `POST /api/v1/studio/messages`, the
draft's pipeline read back over REST. The steps here (llm, retrieve) need no other node kind;
router, template, extract and bot steps by conversation are in `test_flow_step_transcripts.py`."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.png import png_size


async def pipeline(service: Service, bot: str = "faq-bot") -> list[dict[str, Any]]:
    return (await service.call("GET", f"/api/v1/bots/{bot}"))["draft"]["pipeline"]  # type: ignore[no-any-return]


async def test_flow_shows_a_picture_and_the_outline(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    said = await service.say("/flow faq-bot")
    [message] = said["messages"]
    assert message["text"].startswith(
        "*faq-bot* runs the plain flow (1 step; no flow of its own yet):\n`llm` llm (answers)\n"
        "Add a step with `/flow faq-bot add KIND ID [key=value ...]`"
    )
    picture = message["file"]
    assert (picture["name"], picture["mime"]) == ("faq-bot-flow.png", "image/png")
    width, height = png_size(base64.b64decode(picture["data"]))
    assert 200 <= width <= 1600 and 100 <= height <= 2000
    assert said["reply"].endswith("(file: faq-bot-flow.png)")
    assert "runs the plain flow" in await service.reply("show me the flow of faq-bot")
    assert "runs the plain flow" in await service.reply("show me faq-bot's flow")


async def test_retrieve_and_llm_steps_by_conversation(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    added = await service.reply("/flow faq-bot add retrieve kb top_k=3")
    assert added.startswith(
        "Added retrieve `kb` just before `llm`, the step that answers at the end. "
        "(draft revision 2)\n\n*faq-bot* flow (2 steps, starting at `kb`):\n"
        "`kb` retrieve top_k=3 → `llm`\n`llm` llm (answers)"
    )
    assert await pipeline(service) == [
        {"id": "kb", "kind": "retrieve", "params": {"top_k": 3}, "next": "llm"},
        {"id": "llm", "kind": "llm", "params": {}, "next": None},
    ]

    changed = await service.reply("/flow set kb top_k=5 min_score=0.25")  # the current bot
    assert changed.startswith("Changed top_k, min_score of `kb`.")
    added = await service.reply("/flow faq-bot add llm polish after llm")
    assert added.startswith("Added llm `polish` after `llm`.")
    removed = await service.reply("/flow faq-bot remove llm")
    assert removed.startswith("Removed `llm`.")
    assert await pipeline(service) == [
        {
            "id": "kb",
            "kind": "retrieve",
            "params": {"top_k": 5, "min_score": 0.25},
            "next": "polish",
        },
        {"id": "polish", "kind": "llm", "params": {}, "next": None},
    ]
    history = await service.call("GET", "/api/v1/bots/faq-bot/history")
    edits = [event for event in history if event["action"] == "bot.edit"]
    assert len(edits) == 4 and all("pipeline" in event["after"] for event in edits)
    assert edits[0]["actor"] == "api:owner"


async def test_a_flow_edit_shows_in_diff_step_by_step(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply("/flow faq-bot add retrieve kb top_k=3")
    diff = await service.reply("/diff faq-bot")
    assert diff == (
        "*faq-bot*: v1 → draft\nflow (pipeline):\n  ~ starts at `kb` (was `llm`)\n"
        "  + `kb` retrieve top_k=3 → `llm`"
    )


async def test_bad_flow_edits_say_why_and_change_nothing(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/flow faq-bot add retrieve kb")
    before = await service.call("GET", "/api/v1/bots/faq-bot")
    refusals = {
        "/flow faq-bot add retrieve kb": "Nothing was changed: there already is a step `kb`",
        "/flow faq-bot remove nope": "Nothing was changed: there is no step `nope`; the steps "
        "are `kb`, `llm`.",
        "/flow faq-bot remove llm": "last step that answers",
        "/flow faq-bot link kb end": "`kb` (retrieve) would answer nothing and lead nowhere",
        "/flow faq-bot set kb top_k=99": "Nothing was changed:",
        "/flow faq-bot add retrieve 2fast": "'2fast' is not a step id",
        "/flow faq-bot add wizard x": "KIND must be 'llm', 'retrieve', 'router', 'template', "
        "'extract', 'bot' or 'tool', not 'wizard'.",
        '/flow faq-bot set kb text="unclosed': "is not closed",
        '/route faq-bot "refund" to nowhere': "faq-bot has no step `nowhere` and the team has "
        "no bot 'nowhere'",
        '/route faq-bot "refund" to faq-bot': "cannot route messages to itself",
        "/flow nobot-here add retrieve kb": "No bot named 'nobot-here'",
    }
    for line, says in refusals.items():
        reply = await service.reply(line)
        assert says in reply, (line, reply)
        assert "Traceback" not in reply
    after = await service.call("GET", "/api/v1/bots/faq-bot")
    assert after["revision"] == before["revision"] and after["draft"] == before["draft"]


async def test_a_viewer_sees_the_flow_but_cannot_edit_it(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    shown = await service.say("/flow faq-bot", user="bob")  # a new member: a viewer
    assert shown["messages"][0]["file"]["mime"] == "image/png"
    refused = await service.reply("/flow faq-bot add retrieve kb", user="bob")
    assert "Editing a flow needs the editor role; you are a viewer." in refused
    assert await pipeline(service) == []


async def test_a_flow_built_by_commands_round_trips_through_yaml(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/flow faq-bot add retrieve kb top_k=2 min_score=0.5")
    await service.reply("/flow faq-bot add llm polish after llm")
    exported = await service.call("GET", "/api/v1/bots/faq-bot/export")
    assert "pipeline:\n- id: kb\n  kind: retrieve\n" in exported
    copy = exported.replace("name: faq-bot", "name: faq-copy", 1)
    imported = await service.call("POST", "/api/v1/bots/import", content=copy.encode())
    assert imported["draft"]["pipeline"] == await pipeline(service)


async def test_the_builder_model_edits_a_flow_through_its_tools(
    tmp_path: Path, llm: FakeLLM
) -> None:
    settings = service_settings(tmp_path, builder_model="openai/builder", llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        await service.reply("/newbot faq-bot")
        llm.tool_calls(
            (
                "flow_add",
                {"bot": "faq-bot", "kind": "retrieve", "id": "kb", "params": {"top_k": 2}},
            ),
            ("flow_set", {"id": "kb", "params": {"min_score": 0.4}}),
        )
        reply = await service.reply("look things up in the knowledge first, a bit strictly")
        assert "Step 1/2: Added retrieve `kb`" in reply and "Step 2/2: Changed min_score" in reply
        assert await pipeline(service) == [
            {
                "id": "kb",
                "kind": "retrieve",
                "params": {"top_k": 2, "min_score": 0.4},
                "next": "llm",
            },
            {"id": "llm", "kind": "llm", "params": {}, "next": None},
        ]
        tools = {t["function"]["name"]: t for t in llm.calls[-1].body["tools"]}
        assert {
            "flow",
            "flow_add",
            "flow_set",
            "flow_link",
            "flow_remove",
            "flow_ask",
            "route",
        } <= set(tools)
        assert tools["route"]["function"]["parameters"]["properties"]["match"]["enum"] == [
            "keyword",
            "regex",
            "intent",
        ]
