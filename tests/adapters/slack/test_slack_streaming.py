"""A generated bot's answer shown in Slack while it is written (one that takes longer than
`STREAM_AFTER_S`; a quicker one is posted whole, as before): Slack's streaming API in the
thread (`chat.startStream`, `chat.appendStream`, `chat.stopStream`), then the whole answer in
that message (`chat.update`, with its buttons); where the workspace refuses the streaming API,
the "thinking…" message is edited instead (at most once a second), and that is remembered. The
real slack_sdk against the fake Web API; the model streams from the fake OpenAI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.streams import STREAM_AFTER_S
from tests.adapters.slack.test_slack_flow import _live_in_channel, post, slack_settings, text_of
from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import event_body, message_event, new_ts

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
ANSWER = "Refunds take five business days after we receive the returned item."
SHOWN = ("chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream")


@pytest.fixture
async def studio(tmp_path: Path, slack: FakeSlack, llm: FakeLLM) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    async with running_service(slack_settings(tmp_path, slack, llm_api_base=llm.base_url)) as s:
        await _live_in_channel(s, model="openai/fake-model")
        yield s


async def _ask(studio: Service, slack: FakeSlack, text: str, answer: str) -> tuple[str, list[Call]]:
    """Ask in the channel; once `answer` is shown whole, its thread and every call showing it."""
    before = len(slack.calls)
    ts = new_ts()
    event = message_event(text, user="U0002", channel="C0001", channel_type="channel", ts=ts)
    assert (await post(studio, event_body(event))).status_code == 200
    for _ in range(500):
        calls = [c for c in slack.calls[before:] if c.method in (*SHOWN, "chat.stopStream")]
        if calls and calls[-1].method == "chat.update" and answer in text_of(calls[-1]):
            return ts, calls
        await asyncio.sleep(0.02)
    raise AssertionError(f"the answer was not shown: {[c.method for c in calls]}")


async def test_the_answer_streams_in_its_thread_then_is_final(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.reply(ANSWER, chunk_delay_s=0.25)
    thread, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    methods = [c.method for c in calls]
    assert methods[0] == "chat.startStream" and methods[-2:] == ["chat.stopStream", "chat.update"]
    assert 1 <= methods.count("chat.appendStream") < len(ANSWER.split())  # batched, not per word
    start = calls[0]
    assert (start.body["channel"], start.body["thread_ts"]) == ("C0001", thread)
    streamed = start.body["markdown_text"] + "".join(
        c.body["markdown_text"] for c in calls if c.method == "chat.appendStream"
    )
    assert ANSWER.startswith(streamed) and streamed
    final = calls[-1]
    assert ANSWER in text_of(final) and final.body["ts"] == calls[-2].body["ts"]
    assert "chat.postMessage" not in methods and slack.streaming() == {}


async def test_a_quick_answer_is_posted_whole_in_one_call(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.reply("Yes.")
    before = len(slack.calls)
    event = message_event("Card?", user="U0002", channel="C0001", channel_type="channel")
    assert (await post(studio, event_body(event))).status_code == 200
    await slack.wait_for("chat.postMessage")
    await asyncio.sleep(STREAM_AFTER_S + 0.2)
    assert [c.method for c in slack.calls[before:] if c.method in SHOWN] == ["chat.postMessage"]


async def test_a_workspace_without_the_streaming_api_gets_edits(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    slack.fail("chat.startStream", "not_allowed")
    llm.reply(ANSWER, chunk_delay_s=0.3)
    _, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    methods = [c.method for c in calls]
    assert methods[:2] == ["chat.startStream", "chat.postMessage"]  # refused, then a message
    edits = [c for c in calls if c.method == "chat.update"]
    assert len(edits) >= 2 and all(e.body["ts"] == edits[0].body["ts"] for e in edits)
    assert ANSWER.startswith(edits[0].body["text"]) and ANSWER in text_of(edits[-1])

    llm.reply("Yes, by card too.", chunk_delay_s=0.4)  # long enough to be streamed
    _, again = await _ask(studio, slack, "By card?", "Yes, by card too.")
    assert "chat.startStream" not in [c.method for c in again]  # remembered
    assert "Yes, by card too." in text_of(again[-1])
