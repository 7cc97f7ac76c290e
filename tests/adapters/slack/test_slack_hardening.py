"""Slack requests that are malformed, forged or replayed: refused or ignored, never a 500, never
run twice, and never logged with their body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time

import pytest
from sqlalchemy import text

from adapters.slack.app import SECRET_FORM
from tests.adapters.slack.test_slack_flow import SECRET, dm, post, responded, studio
from tests.factories import Service
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_payloads import FORM, JSON, event_body, message_event, sign, slash_body
from tests.fakes.slack_payloads import view_submission_body as view_body

__all__ = ["studio"]  # the fixture, shared with the flow tests

TELEGRAM_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


def _signature(body: bytes, timestamp: str) -> str:
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return f"v0={digest.hexdigest()}"


@pytest.mark.parametrize("timestamp", ["abc", "", "12.5", " 1", "9" * 5000, "1e9"])
async def test_a_malformed_timestamp_is_refused_with_401(
    studio: Service, slack: FakeSlack, timestamp: str
) -> None:
    body = event_body(message_event("newbot evil-bot"))
    headers = {
        "Content-Type": JSON,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": _signature(body, timestamp),  # signed as sent: still refused
    }
    response = await studio.client.post(
        "/slack/events", content=body, headers={k: v.encode() for k, v in headers.items()}
    )
    assert response.status_code == 401 and response.json() == {"error": "invalid request"}
    await asyncio.sleep(0.1)
    assert slack.calls_to("chat.postMessage") == []


async def test_a_non_ascii_signature_is_refused_with_401(studio: Service) -> None:
    body = event_body(message_event("hello"))
    headers = {
        "Content-Type": JSON,
        "X-Slack-Request-Timestamp": str(int(time.time())).encode(),
        "X-Slack-Signature": "v0=é".encode("latin-1"),
    }
    response = await studio.client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize("signed", [True, False])
async def test_a_body_that_is_not_utf8_is_refused_with_401(studio: Service, signed: bool) -> None:
    body = b"\xff\xfe{}"  # Slack signs and sends text: slack_sdk's check raised on this
    timestamp = str(int(time.time()))
    signature = _signature(body, timestamp) if signed else "v0=" + "0" * 64
    headers = {
        "Content-Type": JSON,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }
    response = await studio.client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401 and response.json() == {"error": "invalid request"}


async def test_a_replayed_slash_command_runs_once(studio: Service, slack: FakeSlack) -> None:
    command = slash_body("/studio", "newbot faq-bot", response_url=slack.response_url("new"))
    headers = {**sign(command, SECRET), "Content-Type": FORM}
    for retry in ("", "1"):  # a replay of the same signed request, and one Slack calls a retry
        extra = {"X-Slack-Retry-Num": retry} if retry else {}
        sent = await studio.client.post(
            "/slack/events", content=command, headers={**headers, **extra}
        )
        assert sent.status_code == 200
    answer = await responded(slack, "new")
    assert "faq-bot" in answer["text"] and "already" not in answer["text"]
    await studio.app.state.core.runtime.drain()
    await asyncio.sleep(0.2)
    said = [c.body["text"] for c in slack.calls_to("response_url:new")]
    assert [t for t in said if t != "Working on it…"] == [answer["text"]]
    async with studio.app.state.core.db.read_conn() as conn:
        rows = (await conn.execute(text("select dedupe_key, status from inbox"))).all()
    assert [s for k, s in rows if k.startswith("slack-command:")] == ["done"]

    again = slash_body("/studio", "newbot faq-bot", response_url=slack.response_url("again"))
    assert (await post(studio, again, content_type=FORM)).status_code == 200  # typed anew: runs
    assert "already" in (await responded(slack, "again"))["text"]


async def test_a_slash_command_with_a_token_is_stored_without_it(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    command = slash_body(
        "/deploy", f"faq-bot telegram {TELEGRAM_TOKEN}", response_url=slack.response_url("d")
    )
    await post(studio, command, content_type=FORM)
    await responded(slack, "d")
    async with studio.app.state.core.db.read_conn() as conn:
        stored = [str(p) for (p,) in (await conn.execute(text("select payload from inbox"))).all()]
    assert stored and all(TELEGRAM_TOKEN not in p for p in stored)


async def test_a_request_failing_verification_is_never_logged_with_its_body(
    studio: Service, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    metadata = json.dumps({"request": "r1", "channel": "D0001", "thread": None})
    form = view_body(SECRET_FORM, {"secret": {"value": TELEGRAM_TOKEN}}, private_metadata=metadata)
    caplog.set_level(logging.DEBUG)
    forged = {**sign(form, "wrong-secret"), "Content-Type": FORM}
    stale = {**sign(form, SECRET, timestamp=int(time.time()) - 600), "Content-Type": FORM}
    for headers in (forged, stale, {"Content-Type": FORM}):
        response = await studio.client.post("/slack/events", content=form, headers=headers)
        assert response.status_code == 401
    signed = {**sign(form, SECRET), "Content-Type": FORM}  # and a genuine one: not logged either
    assert (await studio.client.post("/slack/events", content=form, headers=signed)).is_success
    await studio.app.state.core.runtime.drain()
    for record in caplog.records:
        logged = f"{record.getMessage()} {record.args} {record.exc_text} {vars(record)}"
        assert TELEGRAM_TOKEN not in logged and "AAHfiqks" not in logged, record.name
    assert "failed verification" in caplog.text  # the refusal is logged, the body is not


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"type": "event_callback", "event":', JSON),  # cut short
        (b"[]", JSON),  # JSON, but no object
        (b"payload=%7Bnot-json", FORM),  # an interaction whose payload is no JSON
    ],
)
async def test_a_signed_body_that_is_no_slack_payload_gets_400(
    studio: Service, slack: FakeSlack, body: bytes, content_type: str
) -> None:
    headers = {**sign(body, SECRET), "Content-Type": content_type}
    response = await studio.client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "the body is no Slack payload"}
    await asyncio.sleep(0.1)
    assert slack.calls_to("chat.postMessage") == []
