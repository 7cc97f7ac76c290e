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
