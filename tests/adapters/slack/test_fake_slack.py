"""The fake Slack Web API, driven by the real slack_sdk client, and the signed-request factories."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import (
    action_body,
    event_body,
    mention_event,
    message_event,
    sign,
    slash_body,
    url_verification_body,
)

BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]


def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=fake.base_url)


async def test_auth_test(slack: FakeSlack) -> None:
    response = await client(slack).auth_test()
    assert response["user_id"] == "UBOT"
    assert response["bot_id"] == "BBOT"
    assert response["team_id"] == "T0001"
    assert slack.calls == [Call("auth.test", "xoxb-test", {})]


async def test_post_message_records_decoded_blocks_and_update(slack: FakeSlack) -> None:
    web = client(slack)
    first = await web.chat_postMessage(channel="D0001", text="hi", blocks=BLOCKS)
    second = await web.chat_postMessage(channel="D0001", text="again", thread_ts=first["ts"])
    assert first["channel"] == "D0001"
    assert first["message"]["text"] == "hi"
    assert float(second["ts"]) > float(first["ts"])
    assert second["message"]["thread_ts"] == first["ts"]

    calls = await slack.wait_for("chat.postMessage", count=2)
    assert calls[0].token == "xoxb-test"
    assert calls[0].body["blocks"] == BLOCKS
    assert calls[1].body["thread_ts"] == first["ts"]

    updated = await web.chat_update(channel="D0001", ts=first["ts"], text="edited")
    assert (updated["channel"], updated["ts"]) == ("D0001", first["ts"])
    assert slack.calls_to("chat.update")[0].body["text"] == "edited"


async def test_form_encoded_blocks_are_decoded(slack: FakeSlack) -> None:
    await client(slack).api_call(
        "chat.postMessage", data={"channel": "C0001", "blocks": json.dumps(BLOCKS)}
    )
    (call,) = slack.calls_to("chat.postMessage")
    assert call.body == {"channel": "C0001", "blocks": BLOCKS}


async def test_other_methods(slack: FakeSlack) -> None:
    web = client(slack)
    ephemeral = await web.chat_postEphemeral(channel="C0001", user="U0001", text="psst")
    assert ephemeral["message_ts"]
    view = await web.views_open(trigger_id="T.trig", view={"type": "modal", "blocks": []})
    assert view["view"]["id"].startswith("V")
    user = await web.users_info(user="U0001")
    assert user["user"]["id"] == "U0001" and user["user"]["profile"]["real_name"]

    file = slack.add_file("F0001", b"hello", name="a.txt")
    info = await web.files_info(file="F0001")
    assert info["file"]["url_private"] == file["url_private"]
    uploaded = await web.files_upload_v2(channel="C0001", content="data", filename="x.txt")
    assert uploaded["file"]["id"]
    (upload,) = [c for c in slack.calls if c.method.startswith("upload:")]
    assert upload.body["data"] == b"data"

    with pytest.raises(SlackApiError) as raised:
        await web.api_call("pins.add", json={"channel": "C0001"})
    assert raised.value.response["error"] == "unknown_method"
    assert slack.calls_to("pins.add")[0].body == {"channel": "C0001"}


async def test_scripted_failure_surfaces_as_slack_api_error(slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", "not_in_channel")
    web = client(slack)
    with pytest.raises(SlackApiError) as raised:
        await web.chat_postMessage(channel="C0001", text="hi")
    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "not_in_channel"
    assert (await web.chat_postMessage(channel="C0001", text="hi"))["ok"]
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_rate_limit_without_a_retry_handler(slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        await client(slack).chat_postMessage(channel="C0001", text="hi")
    response = raised.value.response
    assert response.status_code == 429
    assert response["error"] == "ratelimited"
    assert response.headers["Retry-After"] == "7"


async def test_rate_limit_with_the_retry_handler(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler sleeps Retry-After plus random() seconds; no jitter keeps the test fast.
    monkeypatch.setattr("slack_sdk.http_retry.builtin_async_handlers.random.random", lambda: 0.0)
    slack.rate_limit("chat.postMessage", retry_after=0)
    web = client(slack)
    web.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=1))
    response = await web.chat_postMessage(channel="C0001", text="hi")
    assert response["ok"]
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert slack.pending == 0


async def test_delay(slack: FakeSlack) -> None:
    slack.delay("auth.test", 0.2)
    started = time.monotonic()
    assert (await client(slack).auth_test())["ok"]
    assert time.monotonic() - started >= 0.2


async def test_conversations_info(slack: FakeSlack) -> None:
    slack.add_channel("C0001", "support", member=True)
    web = client(slack)
    info = await web.conversations_info(channel="C0001")
    assert info["channel"] == {
        "id": "C0001",
        "name": "support",
        "is_channel": True,
        "is_private": False,
        "is_im": False,
        "is_member": True,
    }
    with pytest.raises(SlackApiError) as raised:
        await web.conversations_info(channel="C9999")
    assert raised.value.response["error"] == "channel_not_found"


async def test_response_url(slack: FakeSlack) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(slack.response_url("cmd1"), json={"text": "done"}) as response,
    ):
        assert response.status == 200
    (call,) = await slack.wait_for("response_url:cmd1")
    assert call.body == {"text": "done"}
    assert call.token is None


def test_reset(fake_slack: FakeSlack) -> None:
    fake_slack.add_channel("C0001", "support")
    fake_slack.fail("auth.test")
    fake_slack.reset()
    assert fake_slack.calls == [] and fake_slack.pending == 0


def test_sign_is_accepted_by_slack_sdk() -> None:
    verifier = SignatureVerifier("s3cret")
    body = event_body(message_event("hello"))
    assert verifier.is_valid_request(body, sign(body, "s3cret"))
    assert not verifier.is_valid_request(body, sign(body, "other"))
    assert not verifier.is_valid_request(body, sign(body, "s3cret", int(time.time()) - 600))
    headers = sign(body, "s3cret", 1_700_000_000)
    assert headers["X-Slack-Request-Timestamp"] == "1700000000"
    assert headers["X-Slack-Signature"].startswith("v0=")


def test_payload_factories() -> None:
    envelope = json.loads(event_body(mention_event("help")))
    assert envelope["type"] == "event_callback" and envelope["team_id"] == "T0001"
    assert envelope["event"]["text"] == "<@UBOT> help"
    assert envelope["event_id"] != json.loads(event_body(mention_event("x")))["event_id"]
    first, second = message_event("a"), message_event("b")
    assert first["ts"] != second["ts"] and first["channel_type"] == "im"

    slash = parse_qs(slash_body("/studio", "help", response_url="http://127.0.0.1:1/response/x"))
    assert slash[b"command"] == [b"/studio"] and slash[b"user_id"] == [b"U0001"]

    (raw,) = parse_qs(action_body("yes", thread_ts="1.2").decode())["payload"]
    payload = json.loads(raw)
    assert payload["type"] == "block_actions"
    assert payload["actions"] == [
        {**payload["actions"][0], "action_id": "studio", "value": "yes", "type": "button"}
    ]
    assert payload["message"]["thread_ts"] == "1.2"
    assert json.loads(url_verification_body("abc"))["challenge"] == "abc"
