"""The thread's status while a generated bot's answer has no text yet: "<bot> is thinking…"
(`assistant.threads.setStatus`) instead of a "thinking…" message, where the answer streams
natively; Slack clears it when the app posts in the thread. Where the workspace refuses the
status, the "thinking…" message comes back, and that is remembered. The real slack_sdk and
slack-bolt over HTTP against the fake Web API; the model streams from the fake OpenAI server.
Timing constants are shortened (they are read when used)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.adapters.slack.test_slack_flow import _live_in_channel, post, slack_settings, text_of
from tests.conftest import running_service
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import event_body, message_event, new_ts

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
ANSWER = "Refunds take five business days after we receive the returned item."
STATUS = "assistant.threads.setStatus"
SEEN = (
    STATUS,
    "chat.postMessage",
    "chat.update",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
)
FIRST_TEXT_S = 0.8  # the slow model's first word comes after this


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status at 0.05 s, "thinking…" message at 0.4 s: both long before the first word."""
    monkeypatch.setattr("adapters.slack.streams.STREAM_AFTER_S", 0.05)
    monkeypatch.setattr("adapters.slack.streams.FLUSH_EVERY_S", 0.05)
    monkeypatch.setattr("adapters.slack.streams.UPDATE_EVERY_S", 0.1)
    monkeypatch.setattr("adapters.slack.channel.THINKING_AFTER_S", 0.4)


@pytest.fixture
async def studio(tmp_path: Path, slack: FakeSlack, llm: FakeLLM) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    async with running_service(slack_settings(tmp_path, slack, llm_api_base=llm.base_url)) as s:
        await _live_in_channel(s, model="openai/fake-model")
        await s.app.state.core.runtime.llm.warm()  # its import is not what is timed here
        yield s


async def _ask(studio: Service, slack: FakeSlack, text: str, answer: str) -> tuple[str, list[Call]]:
    """Ask in the channel; once `answer` is sent (the final message, with its blocks) and a
    moment has passed, its thread and every call about it, in order."""
    before = len(slack.calls)
    ts = new_ts()
    event = message_event(text, user="U0002", channel="C0001", channel_type="channel", ts=ts)
    assert (await post(studio, event_body(event))).status_code == 200
    for _ in range(500):
        calls = [c for c in slack.calls[before:] if c.method in SEEN]
        if any(_final(c, answer) for c in calls):
            await asyncio.sleep(0.25)  # anything late (a "thinking…" message) shows by now
            return ts, [c for c in slack.calls[before:] if c.method in SEEN]
        await asyncio.sleep(0.02)
    raise AssertionError(f"the answer was not sent: {[c.method for c in calls]}")


def _final(call: Call, answer: str) -> bool:
    return bool(call.body.get("blocks")) and answer in text_of(call)


def _sent_once(calls: list[Call], answer: str) -> None:
    """The answer went out once: one final message, and one message made in the thread (the
    streamed one, or the one posted)."""
    assert sum(_final(c, answer) for c in calls) == 1
    made = [c for c in calls if c.method in ("chat.postMessage", "chat.startStream")]
    assert len(made) == 1, [c.method for c in calls]


async def test_a_slow_answer_shows_the_status_then_streams(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.reply(ANSWER, delay_s=FIRST_TEXT_S, chunk_delay_s=0.05)
    thread, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    methods = [c.method for c in calls]
    assert methods[:2] == [STATUS, "chat.startStream"], methods
    assert "chat.appendStream" in methods
    assert methods[-2:] == ["chat.stopStream", "chat.update"]
    assert methods.count(STATUS) == 1 and "chat.postMessage" not in methods  # no "thinking…"
    status = calls[0].body
    assert (status["channel_id"], status["thread_ts"]) == ("C0001", thread)
    assert status["status"] == "is thinking…" and status["username"] == "faq-bot"
    assert calls[1].body["thread_ts"] == thread
    assert calls[-1].body["ts"] == calls[-2].body["ts"]  # the streamed message is the answer
    _sent_once(calls, ANSWER)
    assert slack.statuses() == {} and slack.streaming() == {}  # the stream cleared the status


async def test_an_answer_posted_whole_clears_the_status(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    """No text ever streamed (the model fails): the fallback is posted whole in the thread,
    which clears the status; no "thinking…" message either."""
    llm.fail(400, delay_s=FIRST_TEXT_S)  # not worth a retry: the bot's fallback at once
    thread, calls = await _ask(studio, slack, "Refunds?", "I can't answer that yet.")
    assert [c.method for c in calls] == [STATUS, "chat.postMessage"]
    assert calls[1].body["thread_ts"] == thread
    _sent_once(calls, "I can't answer that yet.")
    assert slack.statuses() == {}


async def test_a_refused_status_falls_back_to_the_message_and_is_remembered(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    slack.fail(STATUS, "missing_scope")
    llm.reply(ANSWER, delay_s=FIRST_TEXT_S, chunk_delay_s=0.05)
    _, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    methods = [c.method for c in calls]
    assert methods[:2] == [STATUS, "chat.postMessage"], methods  # refused, then "thinking…"
    assert "thinking" in calls[1].body["text"] and calls[1].body["username"] == "faq-bot"
    placeholder = slack.messages("C0001")[-1]["ts"]
    assert {c.body["ts"] for c in calls if c.method == "chat.update"} == {placeholder}
    _sent_once(calls, ANSWER)

    llm.reply("Yes, by card too.", delay_s=FIRST_TEXT_S)
    _, again = await _ask(studio, slack, "By card?", "Yes, by card too.")
    assert again[0].method == "chat.postMessage"
    assert STATUS not in [c.method for c in again]  # remembered: not asked again
    _sent_once(again, "Yes, by card too.")
    assert slack.pending == 0


async def test_a_status_that_fails_once_never_holds_up_the_answer(
    studio: Service, slack: FakeSlack, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack too slow to show the status: this answer gets the "thinking…" message on time and
    streams as usual; the next one tries the status again (nothing was refused)."""
    monkeypatch.setattr("adapters.slack.streams.STATUS_WAIT_S", 0.2)
    slack.delay(STATUS, 2.0)
    llm.reply(ANSWER, delay_s=FIRST_TEXT_S, chunk_delay_s=0.05)
    _, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    methods = [c.method for c in calls]
    assert methods[:2] == [STATUS, "chat.postMessage"], methods
    _sent_once(calls, ANSWER)

    slack.fail(STATUS, "ratelimited")  # not a refusal either
    llm.reply("Yes.", delay_s=FIRST_TEXT_S)
    _, again = await _ask(studio, slack, "By card?", "Yes.")
    assert [c.method for c in again][:2] == [STATUS, "chat.postMessage"]
    _sent_once(again, "Yes.")

    llm.reply("Also by bank transfer.", delay_s=FIRST_TEXT_S)
    _, third = await _ask(studio, slack, "By transfer?", "Also by bank transfer.")
    assert [c.method for c in third][:2] == [STATUS, "chat.startStream"]
    _sent_once(third, "Also by bank transfer.")
    assert slack.statuses() == {}


async def test_an_answer_sent_while_its_message_is_made_replaces_it(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    """The first text and the end at once: the answer waits for the message being made (its
    "thinking…" message edited, slowly here) and replaces it; it is never posted twice."""
    slack.fail(STATUS, "not_allowed")
    slack.delay("chat.update", 0.5)
    llm.reply("Yes.", delay_s=FIRST_TEXT_S)
    _, calls = await _ask(studio, slack, "By card?", "Yes.")
    assert [c.method for c in calls] == [STATUS, "chat.postMessage", "chat.update", "chat.update"]
    assert calls[2].body["ts"] == calls[3].body["ts"] == slack.messages("C0001")[-1]["ts"]
    _sent_once(calls, "Yes.")


async def test_a_quick_answer_shows_no_status(
    studio: Service, slack: FakeSlack, llm: FakeLLM
) -> None:
    llm.reply(ANSWER, chunk_delay_s=0.05)  # the first word at once
    _, calls = await _ask(studio, slack, "How long do refunds take?", ANSWER)
    assert STATUS not in [c.method for c in calls]
    assert calls[0].method == "chat.startStream"
    _sent_once(calls, ANSWER)


async def test_the_fake_keeps_a_threads_status_until_the_app_posts_there(
    slack: FakeSlack,
) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
    status = {"channel_id": "C0001", "status": "is thinking…"}
    await client.assistant_threads_setStatus(thread_ts="1.1", **status)
    await client.assistant_threads_setStatus(thread_ts="2.2", **status)
    await client.chat_postMessage(channel="C0001", thread_ts="1.1", text="answer")
    await client.chat_postMessage(channel="C0001", text="elsewhere")
    assert slack.statuses() == {("C0001", "2.2"): "is thinking…"}
    await client.assistant_threads_setStatus(channel_id="C0001", thread_ts="2.2", status="")
    assert slack.statuses() == {}
    await client.assistant_threads_setStatus(thread_ts="3.3", **status)
    with pytest.raises(SlackApiError) as nobody:  # outside a DM a stream names its reader
        await client.chat_startStream(channel="C0001", thread_ts="3.3", markdown_text="a")
    assert nobody.value.response["error"] == "invalid_arguments"
    reader = {"recipient_team_id": "T0001", "recipient_user_id": "U0001"}
    await client.chat_startStream(channel="C0001", thread_ts="3.3", markdown_text="a", **reader)
    assert slack.statuses() == {}
    await client.chat_startStream(channel="D0001", thread_ts="5.5", markdown_text="a")

    slack.fail(STATUS, "missing_scope")
    with pytest.raises(SlackApiError) as refused:
        await client.assistant_threads_setStatus(thread_ts="4.4", **status)
    assert refused.value.response["error"] == "missing_scope"
    assert [c.method for c in slack.calls].count(STATUS) == 5
