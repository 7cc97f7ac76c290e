"""Slack's rate limits, counted: a 429 with `Retry-After` from the fake Web API reaches the real
slack_sdk client, which waits and tries again; each 429 is counted once, by channel, and shown
at `GET /metrics`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.adapters.slack.test_slack_flow import dm, post, posted, slack_settings
from tests.conftest import running_service
from tests.counters import counts, moved
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import event_body, message_event

LIMITED = "studio_platform_rate_limited_total"
CHANNELS = ("slack", "telegram", "telegram-studio")


@pytest.fixture
async def studio(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Service]:
    async with running_service(slack_settings(tmp_path, slack)) as service:
        yield service


async def test_a_429_is_waited_out_and_counted_once(studio: Service, slack: FakeSlack) -> None:
    await dm(studio, slack, "bots")  # the DM channel is open: the next answer is one post
    before = counts(LIMITED, channel=CHANNELS)
    slack.rate_limit("chat.postMessage", retry_after=1)
    sent = len(slack.calls_to("chat.postMessage"))
    assert (await post(studio, event_body(message_event("help")))).status_code == 200
    refused, answer = (await posted(slack, sent + 2))[-2:]
    assert refused.body == answer.body and "Chat Studio commands" in answer.body["text"]
    assert moved(before, counts(LIMITED, channel=CHANNELS)) == {"slack": 1}

    metrics = (await studio.client.get("/metrics")).text
    assert 'studio_platform_rate_limited_total{channel="slack"}' in metrics
