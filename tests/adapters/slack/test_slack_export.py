"""`export BOT` in Slack: the summary is posted, then the CSV goes up through `files_upload_v2`
into the same DM, bytes as exported; asked in a channel, the file still goes only to the
member's DM (it holds end users' words); a member who is not an admin gets a plain refusal."""

from __future__ import annotations

import csv
import io

from tests.adapters.slack.test_slack_files import _uploaded
from tests.adapters.slack.test_slack_flow import dm, post, posted, studio, text_of
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import event_body, mention_event, new_ts

__all__ = ["studio"]  # the fixture, shared with the Slack flow tests


async def _live_bot_with_traffic(studio: Service, slack: FakeSlack) -> None:
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, "promote faq-bot")
    await dm(studio, slack, "promote faq-bot production")
    await dm(studio, slack, "yes")
    deployed = text_of(await dm(studio, slack, "deploy faq-bot web"))
    deployment = deployed.split("/chat/")[1].split()[0].rstrip(".")
    first = (await studio.chat(deployment, "Hello, how are you?")).json()
    assert (await studio.chat(deployment, "And, then?", first["session"])).status_code == 200


async def test_the_export_follows_its_summary_as_a_csv_file(
    studio: Service, slack: FakeSlack
) -> None:
    await _live_bot_with_traffic(studio, slack)
    said = await dm(studio, slack, "export faq-bot")
    assert "1 conversation, 4 messages in the last 7 days, as CSV" in text_of(said)
    await slack.wait_for("files.completeUploadExternal")
    asked, data, shared = _uploaded(slack)
    assert asked["filename"] == "faq-bot-conversations-7d.csv" and int(asked["length"]) == len(data)
    header, *rows = list(csv.reader(io.StringIO(data.decode())))
    assert header[:3] == ["conversation_id", "channel", "user"]
    assert [(row[6], row[7]) for row in rows][::2] == [
        ("user", "Hello, how are you?"),
        ("user", "And, then?"),
    ]
    assert {row[6] for row in rows[1::2]} == {"assistant"}
    assert shared["channel_id"] == "D0001"
    assert [f["title"] for f in shared["files"]] == ["faq-bot-conversations-7d.csv"]


async def test_a_member_who_is_not_an_admin_gets_no_file(studio: Service, slack: FakeSlack) -> None:
    await _live_bot_with_traffic(studio, slack)
    refused = await dm(studio, slack, "export faq-bot json", user="U0002")
    assert "Exporting conversations needs the admin role; you are a viewer." in text_of(refused)
    assert slack.calls_to("files.getUploadURLExternal") == []


async def test_asked_in_a_channel_the_file_goes_to_the_member_alone(
    studio: Service, slack: FakeSlack
) -> None:
    await _live_bot_with_traffic(studio, slack)
    before = len(slack.calls_to("chat.postMessage"))
    ts = new_ts()
    await post(studio, event_body(mention_event("<@UBOT> export faq-bot", ts=ts)))
    said = (await posted(slack, before + 1))[-1]
    assert said.body["channel"] == "C0001" and said.body["thread_ts"] == ts
    assert "I sent it to you in a direct message" in text_of(said)
    await slack.wait_for("files.completeUploadExternal")
    _, _, shared = _uploaded(slack)
    assert shared["channel_id"] == "D0001" and "thread_ts" not in shared
