"""Handoffs, counted by event (`studio_handoffs_total`): a web end user's conversation handed to
a Slack channel's thread (the real slack-bolt and slack_sdk against the fake Slack Web API) and
given back by a person, by the timeout, or by the end user starting over; each counted once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from storage.tables import utcnow
from tests.adapters.slack.test_slack_flow import post, slack_settings
from tests.conftest import running_service
from tests.counters import counts, moved
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import event_body, message_event
from tests.scenarios.test_handoff_flow import (
    as_the_workspace,
    eventually,
    handed_over,
    history,
    live_support_bot,
)

HANDOFFS = "studio_handoffs_total"
EVENTS = ("handed", "resumed", "timeout", "reset")


@pytest.fixture
async def service(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    settings = slack_settings(tmp_path, slack, slack_owners="U0001")
    async with running_service(settings) as running:
        yield await as_the_workspace(running)


def snapshot() -> dict[str, float]:
    return counts(HANDOFFS, event=EVENTS)


async def test_handed_then_resumed_by_a_person(service: Service, slack: FakeSlack) -> None:
    before = snapshot()
    deployment, session, thread = await handed_over(service, slack)
    assert moved(before, snapshot()) == {"handed": 1}
    resume = message_event(
        "resume", user="U0009", channel="C0001", channel_type="channel", thread_ts=thread
    )
    assert (await post(service, event_body(resume))).status_code == 200

    async def handed_back() -> bool:
        return not (await history(service, deployment, session))["handoff"]

    await eventually(handed_back, "the conversation handed back")
    assert moved(before, snapshot()) == {"handed": 1, "resumed": 1}

    metrics = (await service.client.get("/metrics")).text
    assert 'studio_handoffs_total{event="handed"}' in metrics
    assert 'studio_handoffs_total{event="resumed"}' in metrics


async def test_a_handoff_nobody_answers_ends_as_a_timeout(
    service: Service, slack: FakeSlack
) -> None:
    before = snapshot()
    await handed_over(service, slack)
    desk = service.app.state.core.runtime.handoffs
    assert await desk.expire(now=utcnow() + timedelta(minutes=31)) == 1
    assert await desk.expire(now=utcnow() + timedelta(minutes=62)) == 0
    assert moved(before, snapshot()) == {"handed": 1, "timeout": 1}


async def test_the_end_user_starting_over_ends_it_as_a_reset(
    service: Service, slack: FakeSlack
) -> None:
    before = snapshot()
    deployment, session, _ = await handed_over(service, slack)
    assert (await service.chat(deployment, "/reset", session)).json()["handoff"] is False
    assert moved(before, snapshot()) == {"handed": 1, "reset": 1}


async def test_a_handoff_the_room_refused_is_not_counted(
    service: Service, slack: FakeSlack
) -> None:
    deployment = await live_support_bot(service)
    before = snapshot()
    slack.fail("chat.postMessage", "not_in_channel")
    assert (await service.chat(deployment, "a human please")).json()["handoff"] is False
    assert moved(before, snapshot()) == {}
