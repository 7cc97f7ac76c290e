"""`/secret set NAME` from Slack: the value goes into a private form (a modal), never a channel,
and is handed to the Studio sealed (the real slack-bolt against the fake Slack Web API)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from adapters.slack.app import SECRET_FORM
from tests.adapters.slack.test_slack_flow import dm, post, posted, responded, studio, text_of
from tests.adapters.slack.test_slack_telegram_token import opened_form
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, action_body, slash_body, view_submission_body

__all__ = ["studio"]  # the fixture
VALUE = "sk-live-Sl4ckV4lue"


async def submit(service: Service, form: dict[str, Any], typed: str) -> Any:
    view = form["view"] if isinstance(form["view"], dict) else json.loads(form["view"])
    assert view["callback_id"] == SECRET_FORM
    body = view_submission_body(
        SECRET_FORM, {"secret": {"value": typed}}, private_metadata=view["private_metadata"]
    )
    return await post(service, body, content_type=FORM)


async def _secrets(service: Service) -> list[tuple[int, str]]:
    """Every team's secrets (the workspace's team is not the REST key's)."""
    async with service.app.state.core.db.read_conn() as conn:
        rows = await conn.execute(text("select team_id, name from team_secret"))
    return [(team, name) for team, name in rows.all()]


async def test_a_dm_offers_a_button_that_opens_the_form(studio: Service, slack: FakeSlack) -> None:
    asked = await dm(studio, slack, "secret set acme-crm")
    assert "private form" in text_of(asked)
    (button,) = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    assert button["text"]["text"] == "Enter the value"
    click = action_body(button["value"], action_id=button["action_id"], trigger_id="T.trig")
    assert (await post(studio, click, content_type=FORM)).status_code == 200
    form = await opened_form(slack)
    view = json.loads(form["view"]) if isinstance(form["view"], str) else form["view"]
    assert form["trigger_id"] == "T.trig" and "acme-crm" in json.dumps(view["blocks"])

    empty = await submit(studio, form, "")
    assert empty.status_code == 200 and empty.json()["response_action"] == "errors"
    assert empty.json()["errors"] == {"secret": "The value is empty."}
    assert await _secrets(studio) == []

    before = len(slack.calls_to("chat.postMessage"))
    accepted = await submit(studio, form, VALUE)
    assert accepted.status_code == 200 and not accepted.content
    done = (await posted(slack, before + 1))[-1]
    assert "Secret *acme-crm* saved" in text_of(done) and done.body["channel"] == "D0001"
    assert all(VALUE not in str(c.body) for c in slack.calls)
    [(team, name)] = await _secrets(studio)
    assert name == "acme-crm"
    assert await studio.app.state.core.secrets.reveal(team, "acme-crm") == VALUE


async def test_the_slash_command_opens_the_form_at_once(studio: Service, slack: FakeSlack) -> None:
    command = slash_body(
        "/studio", "secret set acme-crm", response_url=slack.response_url("s"), trigger_id="T.s"
    )
    assert (await post(studio, command, content_type=FORM)).status_code == 200
    form = await opened_form(slack)
    assert form["trigger_id"] == "T.s"
    assert not slack.calls_to("response_url:s")  # no button needed: the form is open
    before = len(slack.calls_to("chat.postMessage"))
    await submit(studio, form, VALUE)
    assert "saved" in text_of((await posted(slack, before + 1))[-1])


async def test_another_persons_submission_saves_nothing(studio: Service, slack: FakeSlack) -> None:
    asked = await dm(studio, slack, "secret set acme-crm")
    (button,) = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    click = action_body(
        button["value"], action_id=button["action_id"], user="U0002", trigger_id="T.other"
    )
    await post(studio, click, content_type=FORM)
    form = await opened_form(slack)
    view = form["view"] if isinstance(form["view"], dict) else json.loads(form["view"])
    body = view_submission_body(
        SECRET_FORM,
        {"secret": {"value": VALUE}},
        private_metadata=view["private_metadata"],
        user="U0002",
    )
    before = len(slack.calls_to("chat.postMessage"))
    await post(studio, body, content_type=FORM)
    refused = (await posted(slack, before + 1))[-1]
    assert "No secret was waiting" in text_of(refused)
    assert await _secrets(studio) == []


async def test_a_value_typed_in_the_command_is_refused(studio: Service, slack: FakeSlack) -> None:
    command = slash_body(
        "/studio", f"secret set acme-crm {VALUE}", response_url=slack.response_url("v")
    )
    await post(studio, command, content_type=FORM)
    answer = await responded(slack, "v")
    assert "Never type a secret's value" in answer["text"] and VALUE not in answer["text"]
    assert not slack.calls_to("views.open")
