"""The README's "Flows" walk-through, played as written: each `you>` line goes to the Studio and
changes the draft, and the outline printed under `/flow` is the one the Studio shows. It builds a
router, a template and an extract step."""

from __future__ import annotations

import re

from tests.factories import Service
from tests.scenarios.test_readme import _fence

_LINE = re.compile(r"you> (?P<text>.+?)(?:\s{2,}\((?P<note>.+)\))?")


def _steps() -> list[tuple[str, list[str]]]:
    """Each line said, with the lines the README prints after it."""
    said: list[tuple[str, list[str]]] = []
    for line in _fence("Flows", "text").splitlines():
        match = _LINE.fullmatch(line)
        if match:
            said.append((match["text"], []))
        else:
            said[-1][1].append(line)
    return said


async def test_the_flows_walk_through(service: Service) -> None:
    revisions = []
    for text, printed in _steps():
        answer = await service.say(text)
        reply = answer["reply"]
        assert "Nothing was changed" not in reply and "Sorry" not in reply, (text, reply)
        if printed:
            assert answer["messages"][0]["text"] == "\n".join(printed)
            assert answer["messages"][0]["file"]["mime"] == "image/png"
        revisions.append((await service.call("GET", "/api/v1/bots/shop-bot"))["revision"])
    assert revisions == [1, 2, 3, 4, 4]  # each edit saved once; showing the flow changes nothing
    tried = await service.reply("/try shop-bot I want a refund")
    assert tried == "*shop-bot* (draft): Before we go on: what's your email address?"


async def test_the_flow_built_in_chat_is_tested_per_path_promoted_and_answers_end_users(
    service: Service,
) -> None:
    for text, _printed in _steps():
        await service.say(text)
    for line in (
        '/test shop-bot add "I want a refund" expect step "ask-email"',
        '/test shop-bot add "my email is jo@example.com" expect step "llm"',
        '/test shop-bot add "I want a refund" expect contains "email address"',
    ):
        assert "Added test" in await service.reply(line), line
    # a promotion runs the draft's tests first, and freezes it only when they pass
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": env})
    versions = await service.call("GET", "/api/v1/bots/shop-bot/versions")
    assert [v["number"] for v in versions] == [1]
    deployed = await service.call(
        "POST", "/api/v1/bots/shop-bot/deployments", json={"channel": "web"}
    )

    first = (await service.chat(deployed["id"], "I want a refund")).json()
    assert first["reply"] == "Before we go on: what's your email address?"
    told = await service.chat(
        deployed["id"], "jo@example.com, and a refund please", first["session"]
    )
    assert told.json()["reply"] == "Refunds take 5 business days."
