"""Files the Studio sends on Slack (a flow's picture): the text is posted, then the file goes up
through `files_upload_v2` (an upload URL, the bytes, `files.completeUploadExternal`) where the
text went; a slash command's answer is private, so its file goes to the caller's DM."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.adapters.slack.test_slack_flow import dm, post, responded, studio, text_of
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, slash_body
from tests.png import png_size

__all__ = ["studio"]  # the fixture, shared with the Slack flow tests


def _uploaded(slack: FakeSlack) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """The one upload: what was asked for, the bytes sent, and how it was shared."""
    [asked] = slack.calls_to("files.getUploadURLExternal")
    [sent] = [c for c in slack.calls if c.method.startswith("upload:")]
    [shared] = slack.calls_to("files.completeUploadExternal")
    return asked.body, sent.body["data"], shared.body


async def test_the_flow_picture_follows_the_outline_in_the_dm(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    said = await dm(studio, slack, "flow faq-bot")
    assert "runs the plain flow" in text_of(said)
    await slack.wait_for("files.completeUploadExternal")
    asked, data, shared = _uploaded(slack)
    assert asked["filename"] == "faq-bot-flow.png" and int(asked["length"]) == len(data)
    png_size(data)
    assert shared["channel_id"] == "D0001"
    assert [f["title"] for f in shared["files"]] == ["faq-bot-flow.png"]


async def test_stats_come_with_their_chart(studio: Service, slack: FakeSlack) -> None:
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, "promote faq-bot")
    await dm(studio, slack, "promote faq-bot production")
    await dm(studio, slack, "yes")
    deployed = text_of(await dm(studio, slack, "deploy faq-bot web"))
    deployment = deployed.split("/chat/")[1].split()[0].rstrip(".")
    assert (await studio.chat(deployment, "Hello?")).status_code == 200
    said = await dm(studio, slack, "stats faq-bot")
    assert "faq-bot" in text_of(said) and "last 7 days" in text_of(said)
    await slack.wait_for("files.completeUploadExternal")
    asked, data, shared = _uploaded(slack)
    assert asked["filename"] == "faq-bot-stats-7d.png" and png_size(data) == (800, 640)
    assert shared["channel_id"] == "D0001"


async def test_a_slash_commands_picture_goes_to_the_callers_dm(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    posts = len(slack.calls_to("chat.postMessage"))
    await post(
        studio,
        slash_body("/studio", "flow faq-bot", response_url=slack.response_url("f")),
        content_type=FORM,
    )
    answered = await responded(slack, "f")
    assert "runs the plain flow" in answered["text"] and answered["response_type"] == "ephemeral"
    await slack.wait_for("files.completeUploadExternal")
    _, data, shared = _uploaded(slack)
    png_size(data)
    assert shared["channel_id"] == "D0001"  # never the channel the command was typed in
    assert len(slack.calls_to("chat.postMessage")) == posts  # the file alone, no empty message


async def test_a_refused_upload_is_recorded_and_not_retried(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    slack.fail("files.completeUploadExternal", "not_in_channel")
    await dm(studio, slack, "flow faq-bot")
    await slack.wait_for("files.completeUploadExternal")
    await studio.app.state.core.runtime.drain()
    async with studio.app.state.core.db.read_conn() as conn:
        rows = (await conn.execute(text("select status, error from outbox"))).all()
    failed = [error for status, error in rows if status == "failed"]
    assert len(failed) == 1 and "faq-bot-flow.png" in failed[0], rows
    await dm(studio, slack, "bots")  # the Studio goes on answering
    assert len(slack.calls_to("files.completeUploadExternal")) == 1  # the text is not posted twice
    assert len([c for c in slack.calls_to("chat.postMessage") if "plain flow" in text_of(c)]) == 1
