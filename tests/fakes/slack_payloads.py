"""Builders of inbound Slack requests (Events API, slash commands, interactions) with valid
defaults, and their signatures.

    body = event_body(message_event("hello"))
    headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/json"}
    await client.post("/slack/events", content=body, headers=headers)

    body = slash_body("/studio", "help", response_url=fake.response_url("cmd1"))
    headers = {**sign(body, SIGNING_SECRET), "Content-Type": FORM}

Defaults match the fake Web API (`tests.fakes.slack`): team `T0001`, user `U0001`, the bot is
`UBOT`/`BBOT`. Timestamps and event ids are unique unless given.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from tests.fakes.slack import BOT_ID, BOT_USER_ID, TEAM_ID

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
APP_ID = "A0001"
USER_ID = "U0001"
VERIFICATION_TOKEN = "verification-token"

_seq = itertools.count(1)


def new_ts() -> str:
    """A fresh, increasing Slack message ts (`"<now>.<counter>"`)."""
    return f"{int(time.time())}.{next(_seq):06d}"


def new_trigger() -> str:
    """A fresh trigger id (Slack gives one to each slash command and click)."""
    return f"{next(_seq)}.trig"


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """`X-Slack-Request-Timestamp` and `X-Slack-Signature` (`v0=` + HMAC-SHA256 of
    `v0:{ts}:{body}`) for `body`; now unless `timestamp` is given. The caller adds the
    `Content-Type` (`JSON` or `FORM`)."""
    raw = body.encode() if isinstance(body, str) else body
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


# -- Events API ---------------------------------------------------------------------------


def event_body(event: dict[str, Any], *, team: str = TEAM_ID, event_id: str | None = None) -> bytes:
    """An `event_callback` envelope around `event`, as the JSON bytes Slack posts."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope).encode()


def message_event(
    text: str,
    *,
    user: str = USER_ID,
    channel: str = "D0001",
    channel_type: str = "im",
    ts: str | None = None,
    thread_ts: str | None = None,
    bot_id: str | None = None,
    subtype: str | None = None,
    files: list[dict[str, Any]] | None = None,
    team: str = TEAM_ID,
) -> dict[str, Any]:
    """A `message` event (a DM by default)."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "team": team,
        "channel": channel,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    if bot_id is not None:
        event["bot_id"] = bot_id
    if subtype is not None:
        event["subtype"] = subtype
    if files is not None:
        event["files"] = files
    return event


def mention_event(
    text: str,
    *,
    user: str = USER_ID,
    channel: str = "C0001",
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
) -> dict[str, Any]:
    """An `app_mention` event; its text is `"<@UBOT> " + text`."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "event_ts": ts,
        "team": team,
        "channel": channel,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def url_verification_body(challenge: str = "challenge-token") -> bytes:
    """The `url_verification` request Slack sends when the events URL is set."""
    body = {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}
    return json.dumps(body).encode()


# -- slash commands and interactions ------------------------------------------------------


def slash_body(
    command: str,
    text: str,
    *,
    user: str = USER_ID,
    channel: str = "C0001",
    team: str = TEAM_ID,
    response_url: str,
    trigger_id: str | None = None,
) -> bytes:
    """A slash command, form-encoded as Slack posts it (give `fake.response_url(name)`); its
    trigger id is new unless given, as each of Slack's is."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team,
        "team_domain": "acme",
        "channel_id": channel,
        "channel_name": _channel_name(channel),
        "user_id": user,
        "user_name": f"user-{user.lower()}",
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger(),
    }
    return urlencode(fields).encode()


def action_body(
    value: str,
    *,
    action_id: str = "studio",
    action_type: str = "button",
    user: str = USER_ID,
    channel: str = "D0001",
    message_ts: str = "1700000000.000100",
    thread_ts: str | None = None,
    team: str = TEAM_ID,
    response_url: str | None = None,
    trigger_id: str | None = None,
) -> bytes:
    """A `block_actions` interaction (a button click on a bot message), form-encoded as
    `payload=<JSON>` as Slack posts it; its trigger id is new unless given. `action_type`
    "feedback_buttons": a click on a `context_actions` block's feedback buttons (`value` is the
    clicked button's)."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    message: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "text": "",
        "ts": message_ts,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
        message["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": f"user-{user.lower()}", "team_id": team},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger(),
        "team": {"id": team, "domain": "acme"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": _channel_name(channel)},
        "message": message,
        "state": {"values": {}},
        "actions": [
            {
                "action_id": action_id,
                "block_id": "studio",
                "value": value,
                "type": action_type,
                "text": {"type": "plain_text", "text": value},
                "action_ts": new_ts(),
            }
        ],
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}).encode()


def _channel_name(channel: str) -> str:
    return "directmessage" if channel.startswith("D") else "support"


def view_submission_body(
    callback_id: str,
    values: dict[str, dict[str, str]],
    *,
    private_metadata: str = "",
    user: str = USER_ID,
    team: str = TEAM_ID,
    view_id: str | None = None,
) -> bytes:
    """A `view_submission` interaction (a modal's submit button), form-encoded as `payload=<JSON>`.
    `values` maps block id -> action id -> the plain text typed into that input."""
    state = {
        block: {action: {"type": "plain_text_input", "value": text}}
        for block, actions in values.items()
        for action, text in actions.items()
    }
    payload: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": f"user-{user.lower()}", "team_id": team},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": "T.view",
        "view": {
            "id": view_id or f"V{next(_seq):06d}",
            "team_id": team,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "state": {"values": state},
            "hash": "h",
        },
    }
    return urlencode({"payload": json.dumps(payload)}).encode()
