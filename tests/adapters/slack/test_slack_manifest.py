"""The Slack app that `slack-manifest.yml` makes can do what the service asks of Slack: the fake
checks every call against the manifest's bot scopes, as Slack does, and the Studio's everyday
work (a DM, a slash command, a chart, a file) still arrives."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.adapters.slack.test_slack_files import _uploaded
from tests.adapters.slack.test_slack_flow import dm, post, responded, studio, text_of
from tests.factories import Service
from tests.fakes.slack import SCOPES, FakeSlack
from tests.fakes.slack_payloads import FORM, slash_body

__all__ = ["studio"]  # the fixture, shared with the Slack flow tests

MANIFEST = Path(__file__).resolve().parents[3] / "slack-manifest.yml"


def _bot_scopes() -> list[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return list(manifest["oauth_config"]["scopes"]["bot"])


def test_every_method_the_fake_serves_has_its_scopes_listed() -> None:
    served = set(FakeSlack._handlers)  # a method added to the fake says which scope it needs
    assert served == set(SCOPES)


async def test_the_manifests_scopes_cover_answers_and_files(
    studio: Service, slack: FakeSlack
) -> None:
    slack.grant(_bot_scopes())
    created = await dm(studio, slack, "newbot faq-bot")
    assert "faq-bot" in text_of(created)
    command = slash_body("/studio", "flow faq-bot", response_url=slack.response_url("f"))
    assert (await post(studio, command, content_type=FORM)).status_code == 200
    assert "runs the plain flow" in (await responded(slack, "f"))["text"]
    await slack.wait_for("files.completeUploadExternal")  # a picture, a chart, an export
    asked, _, shared = _uploaded(slack)
    assert asked["filename"] == "faq-bot-flow.png" and shared["channel_id"] == "D0001"
