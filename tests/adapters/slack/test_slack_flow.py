"""Slack end to end: signed requests over real HTTP to `/slack/events`, the real slack-bolt and
slack_sdk, and the fake Slack Web API recording what the service posts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.slack.app import WORKING
from studio.settings import Settings
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import (
    FORM,
    JSON,
    action_body,
    event_body,
    mention_event,
    message_event,
    new_ts,
    sign,
    slash_body,
)

SECRET = "slack-signing-secret"


def slack_settings(tmp_path: Path, slack: FakeSlack, **overrides: Any) -> Settings:
    """A service with the Slack app configured against the fake Slack."""
    return service_settings(
        tmp_path,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack.base_url,
        **overrides,
    )


@pytest.fixture
async def studio(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    settings = slack_settings(tmp_path, slack)
    async with running_service(settings) as service:
        yield service


async def post(
    service: Service, body: bytes, *, content_type: str = JSON, **headers: str
) -> httpx.Response:
    signed = {**sign(body, SECRET), "Content-Type": content_type, **headers}
    return await service.client.post("/slack/events", content=body, headers=signed)


async def posted(slack: FakeSlack, count: int = 1) -> list[Call]:
    """Wait until chat.postMessage/chat.update were called `count` times in all; in order."""
    for _ in range(300):
        found = [c for c in slack.calls if c.method in ("chat.postMessage", "chat.update")]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"only {len(found)} posts: {[c.body.get('text') for c in found]}")


async def dm(service: Service, slack: FakeSlack, text: str, *, user: str = "U0001") -> Call:
    before = len(slack.calls_to("chat.postMessage"))
    response = await post(service, event_body(message_event(text, user=user)))
    assert response.status_code == 200, response.text
    return (await posted(slack, before + 1))[-1]


async def responded(slack: FakeSlack, name: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """The answer posted to response_url `name`: past the "Working on it…" a command slower
    than `WORKING_AFTER_S` sends first (a loaded machine makes any of them that slow)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        calls = slack.calls_to(f"response_url:{name}")
        answers = [call for call in calls if call.body.get("text") != WORKING]
        if answers:
            return answers[-1].body
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing but {len(calls)} interim posts to response_url {name}")


def text_of(call: Call) -> str:
    blocks = call.body.get("blocks") or []
    parts = [str(call.body.get("text", ""))]
    for block in blocks:
        if block.get("type") == "section":
            parts.append(block.get("text", {}).get("text", ""))
            parts += [f["text"] for f in block.get("fields", [])]
    return "\n".join(parts)


async def test_build_deploy_and_answer_in_a_channel(studio: Service, slack: FakeSlack) -> None:
    created = await dm(studio, slack, "newbot faq-bot")
    assert "faq-bot" in text_of(created) and created.body["channel"] == "D0001"
    assert "username" not in created.body  # the Studio speaks as the app
    await dm(studio, slack, "set greeting Hello from faq-bot")
    assert "v1" in text_of(await dm(studio, slack, "promote faq-bot"))

    asked = await dm(studio, slack, "promote faq-bot production")
    buttons = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Confirm", "Cancel"]
    before = len(slack.calls_to("chat.postMessage"))
    click = action_body(
        buttons[0]["value"],
        action_id=buttons[0]["action_id"],
        message_ts=asked.body.get("ts", new_ts()),
    )
    assert (await post(studio, click, content_type=FORM)).status_code == 200
    done = (await posted(slack, before + 1))[-1]
    assert "production now runs v1" in text_of(done)

    command = slash_body(
        "/deploy", "faq-bot slack <#C0001|support>", response_url=slack.response_url("deploy")
    )
    started = time.perf_counter()
    response = await post(studio, command, content_type=FORM)
    assert response.status_code == 200 and time.perf_counter() - started < 3
    deployed = await responded(slack, "deploy")
    assert "live on slack" in deployed["text"] and deployed["response_type"] == "ephemeral"

    # a colleague's message in the channel gets the bot's answer, in a thread, under its name
    ts = new_ts()
    before = len(slack.calls_to("chat.postMessage"))
    question = message_event(
        "How long do refunds take?", user="U0002", channel="C0001", channel_type="channel", ts=ts
    )
    assert (await post(studio, event_body(question))).status_code == 200
    answer = (await posted(slack, before + 1))[-1]
    assert answer.body["username"] == "faq-bot" and answer.body["thread_ts"] == ts
    assert answer.body["channel"] == "C0001" and "can't answer that yet" in text_of(answer)

    await post(
        studio,
        slash_body("/stats", "faq-bot 24h", response_url=slack.response_url("st")),
        content_type=FORM,
    )
    stats = await responded(slack, "st")
    assert "Turns" in str(stats["blocks"]) and "faq-bot" in stats["text"]


async def test_one_answer_however_often_an_event_arrives(studio: Service, slack: FakeSlack) -> None:
    ts = new_ts()
    body = event_body(message_event("/bots", ts=ts))
    for retry in ("", "1", "2"):
        extra = (
            {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        )
        assert (await post(studio, body, **extra)).status_code == 200
    # the same message as an app_mention too
    await post(studio, event_body(mention_event("<@UBOT> /bots", channel="D0001", ts=ts)))
    await posted(slack, 1)
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_forged_stale_or_unsigned_requests_are_refused(
    studio: Service, slack: FakeSlack
) -> None:
    body = event_body(message_event("newbot evil-bot"))
    forged = {**sign(body, "wrong-secret"), "Content-Type": JSON}
    assert (
        await studio.client.post("/slack/events", content=body, headers=forged)
    ).status_code == 401
    stale = {**sign(body, SECRET, timestamp=int(time.time()) - 600), "Content-Type": JSON}
    assert (
        await studio.client.post("/slack/events", content=body, headers=stale)
    ).status_code == 401
    bare = {"Content-Type": JSON}
    assert (
        await studio.client.post("/slack/events", content=body, headers=bare)
    ).status_code == 401
    await asyncio.sleep(0.2)
    assert slack.calls_to("chat.postMessage") == []
    assert (await studio.call("GET", "/api/v1/bots")) == []  # the local team: nothing happened


async def test_bot_posts_edits_and_unknown_payloads_are_ignored(
    studio: Service, slack: FakeSlack
) -> None:
    for event in (
        message_event("newbot loop-bot", bot_id="BOTHER"),
        message_event("newbot loop-bot", subtype="message_changed"),
        message_event("newbot loop-bot", subtype="message_deleted"),
        {"type": "reaction_added", "user": "U0001", "reaction": "tada"},
    ):
        assert (await post(studio, event_body(event))).status_code == 200
    await asyncio.sleep(0.3)
    assert slack.calls_to("chat.postMessage") == []


async def test_deploying_to_a_channel_the_app_is_not_in(studio: Service, slack: FakeSlack) -> None:
    slack.add_channel("C0002", "private-ish", member=False)
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, "promote faq-bot")
    asked = await dm(studio, slack, "promote faq-bot production")
    await dm(studio, slack, "yes")
    assert asked
    refused = await dm(studio, slack, "deploy faq-bot slack C0002")
    assert "invite" in text_of(refused)
    unknown = await dm(studio, slack, "deploy faq-bot slack C0404")
    assert "invite" in text_of(unknown)


async def test_rate_limits_are_honoured(studio: Service, slack: FakeSlack) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1)
    started = time.perf_counter()
    assert (await post(studio, event_body(message_event("/bots")))).status_code == 200
    first, retry = await posted(slack, 2)  # the 429, then the same post after Retry-After
    assert time.perf_counter() - started >= 1.0
    assert first.body["text"] == retry.body["text"] and "bots" in text_of(retry).lower()
    await asyncio.sleep(0.2)
    assert len(slack.calls_to("chat.postMessage")) == 2


async def workspace_key(studio: Service) -> str:
    """An owner key of the Slack workspace's team (created on first contact, or here)."""
    core = studio.app.state.core
    await core.studio.members.workspace_team("slack-t0001", owners=[])
    return str((await core.ops.create_api_key(team="slack-t0001", role="owner", name="ci")).key)


async def _live_in_channel(studio: Service, channel: str = "C0001", **fields: Any) -> None:
    """faq-bot imported, promoted to production and deployed to `channel` by the workspace's
    team (by REST)."""
    key = await workspace_key(studio)
    spec = {"name": "faq-bot", "prompt": "You answer briefly.", **fields}
    await studio.call("POST", "/api/v1/bots/import", json=spec, key=key)
    for env in ("staging", "production"):
        await studio.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env}, key=key)
    await studio.call(
        "POST",
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "slack", "target": channel},
        key=key,
    )


async def test_a_slow_answer_shows_thinking_then_replaces_it(
    tmp_path: Path, slack: FakeSlack, llm: FakeLLM
) -> None:
    slack.add_channel("C0001", "support", member=True)
    settings = slack_settings(tmp_path, slack, llm_api_base=llm.base_url)
    async with running_service(settings) as studio:
        await _live_in_channel(studio, model="openai/fake-model")
        await studio.app.state.core.runtime.llm.warm()  # its import is not what is timed here
        llm.stall(2.0, text="Refunds take 5 days.")
        # a workspace that refuses the thread's status ("is thinking…") gets the message instead
        slack.fail("assistant.threads.setStatus", "missing_scope")
        ts = new_ts()
        question = message_event(
            "Refunds?", user="U0002", channel="C0001", channel_type="channel", ts=ts
        )
        assert (await post(studio, event_body(question))).status_code == 200
        (thinking,) = await posted(slack, 1)
        assert thinking.method == "chat.postMessage" and "thinking" in thinking.body["text"]
        assert thinking.body["username"] == "faq-bot" and thinking.body["thread_ts"] == ts
        for _ in range(300):  # edited as it is written, then the whole answer, with buttons
            edits = slack.calls_to("chat.update")
            if edits and edits[-1].body.get("blocks"):
                break
            await asyncio.sleep(0.02)
        assert {e.body["ts"] for e in edits} == {slack.messages("C0001")[-1]["ts"]}
        assert "Refunds take 5 days." in text_of(edits[-1])
        assert len(slack.calls_to("chat.postMessage")) == 1

        llm.reply("**Quick** one.")  # a fast answer costs one call; Markdown becomes mrkdwn
        shown = len(slack.calls_to("chat.postMessage") + slack.calls_to("chat.update"))
        await post(
            studio,
            event_body(message_event("Hi", user="U0002", channel="C0001", channel_type="channel")),
        )
        fast = (await posted(slack, shown + 1))[-1]
        assert fast.method == "chat.postMessage" and "*Quick* one." in text_of(fast)
        assert "**" not in text_of(fast)
        await asyncio.sleep(1.7)
        assert len(slack.calls_to("chat.postMessage") + slack.calls_to("chat.update")) == shown + 1


async def test_a_send_that_fails_for_good_is_recorded(studio: Service, slack: FakeSlack) -> None:
    await _live_in_channel(studio)
    slack.fail("chat.postMessage", "not_in_channel")
    await post(
        studio,
        event_body(message_event("Hi", user="U0002", channel="C0001", channel_type="channel")),
    )
    await slack.wait_for("chat.postMessage")
    await studio.app.state.core.runtime.drain()
    metrics = (await studio.client.get("/metrics")).text
    assert 'studio_sends_total{channel="slack",outcome="failed"}' in metrics
    async with studio.app.state.core.db.read_conn() as conn:
        from sqlalchemy import text

        rows = (await conn.execute(text("select status, error from outbox"))).all()
    assert [(s, "invite" in (e or "")) for s, e in rows] == [("failed", True)]


async def test_the_studio_keeps_its_channel_threads(studio: Service, slack: FakeSlack) -> None:
    ts = new_ts()
    await post(studio, event_body(mention_event("<@UBOT> newbot faq-bot", ts=ts)))
    first = (await posted(slack, 1))[-1]
    assert first.body["thread_ts"] == ts and "faq-bot" in text_of(first)
    follow_up = message_event("show", channel="C0001", channel_type="channel", thread_ts=ts)
    await post(studio, event_body(follow_up))
    second = (await posted(slack, 2))[-1]
    assert second.body["thread_ts"] == ts and "Model" in text_of(second)  # the current bot
    # an ordinary message in a channel with no bot is nobody's business
    await post(studio, event_body(message_event("lunch?", channel="C0001", channel_type="channel")))
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 2


async def test_the_studios_threads_outlive_a_restart(tmp_path: Path, slack: FakeSlack) -> None:
    """A bot is deployed in the channel: after a restart, a follow-up in the Studio's thread still
    reaches the Studio, and a new message in the channel still reaches the bot."""
    slack.add_channel("C0001", "support", member=True)
    settings = slack_settings(tmp_path, slack)
    ts = new_ts()
    async with running_service(settings) as studio:
        await _live_in_channel(studio)
        await post(studio, event_body(mention_event("<@UBOT> bots", ts=ts)))
        assert "faq-bot" in text_of((await posted(slack, 1))[-1])
    async with running_service(settings) as studio:
        follow_up = message_event(
            "show faq-bot", channel="C0001", channel_type="channel", thread_ts=ts
        )
        await post(studio, event_body(follow_up))
        shown = (await posted(slack, 2))[-1]
        assert shown.body["thread_ts"] == ts and "Model" in text_of(shown)
        assert "username" not in shown.body  # the Studio spoke, not faq-bot
        question = message_event("Refunds?", channel="C0001", channel_type="channel")
        await post(studio, event_body(question))
        answer = (await posted(slack, 3))[-1]
        assert answer.body["username"] == "faq-bot"


async def test_a_shared_file_becomes_the_named_bots_knowledge(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    policy = slack.add_file(
        "F1",
        b"# Refunds\n\nRefunds take 5 business days after we receive the item.",
        name="refunds.md",
        mimetype="text/markdown",
    )
    before = len(slack.calls_to("chat.postMessage"))
    shared = message_event("for faq-bot", subtype="file_share", files=[policy])
    await post(studio, event_body(shared))
    added = (await posted(slack, before + 1))[-1]
    assert "Added refunds.md in *faq-bot*'s draft (1 passage)" in text_of(added)
    download = slack.calls_to("download:F1")[-1]
    assert download.token == "xoxb-test"  # read with the app's token
    tried = await dm(studio, slack, "try faq-bot how long do refunds take?")
    assert "5 business days" in text_of(tried) and "[1] refunds.md, Refunds" in text_of(tried)

    missing = {**policy, "id": "F404", "url_private": policy["url_private"][:-2] + "404"}
    before = len(slack.calls_to("chat.postMessage"))
    await post(studio, event_body(message_event("", subtype="file_share", files=[missing])))
    failed = (await posted(slack, before + 1))[-1]
    assert "could not download refunds.md" in text_of(failed)

    # The app's token goes to Slack's own hosts only: not to a URL an event names elsewhere.
    elsewhere = {**policy, "id": "F9", "url_private": "https://files.example.com/x.md"}
    external = {**policy, "id": "F10", "is_external": True, "mode": "external"}
    downloads = len([c for c in slack.calls if c.method.startswith("download:")])
    before = len(slack.calls_to("chat.postMessage"))
    await post(studio, event_body(message_event("", subtype="file_share", files=[elsewhere])))
    await post(studio, event_body(message_event("", subtype="file_share", files=[external])))
    refused = [text_of(c) for c in (await posted(slack, before + 2))[before:]]
    assert "not stored in Slack" in refused[0] and "no address" in refused[1]
    assert len([c for c in slack.calls if c.method.startswith("download:")]) == downloads


async def test_only_the_workspaces_team_deploys_to_its_channels(
    studio: Service, slack: FakeSlack
) -> None:
    await studio.import_bot()  # the `local` team's bot
    await studio.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    await studio.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"})
    refused = await studio.client.post(
        "/api/v1/bots/faq-bot/deployments",
        headers=studio.auth(),
        json={"channel": "slack", "target": "C0001"},
    )
    assert refused.status_code == 409 and "only the team of this Slack workspace" in refused.text
    assert await studio.call("GET", "/api/v1/deployments") == []


async def test_strangers_and_other_bots_are_not_served(studio: Service, slack: FakeSlack) -> None:
    external = message_event("newbot spy-bot")
    external["user_team"] = "T0OTHER"  # a Slack Connect user from another organisation
    await post(studio, event_body(external))
    bot_mention = mention_event("<@UBOT> newbot loop-bot")
    bot_mention["bot_id"] = "BOTHER"
    await post(studio, event_body(bot_mention))
    await asyncio.sleep(0.3)
    assert slack.calls_to("chat.postMessage") == []


async def test_slash_command_follow_ups_go_to_the_callers_dm(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, 'test faq-bot add "hi" expect contains "answer"')
    await post(
        studio,
        slash_body(
            "/studio", "test faq-bot", channel="C0001", response_url=slack.response_url("t")
        ),
        content_type=FORM,
    )
    started = await responded(slack, "t")
    assert "Running 1 test" in started["text"] and started["response_type"] == "ephemeral"
    for _ in range(200):
        reports = [c for c in slack.calls_to("chat.postMessage") if "tests:" in text_of(c)]
        if reports:
            break
        await asyncio.sleep(0.02)
    assert [c.body["channel"] for c in reports] == ["D0001"]  # not the public channel


async def test_deploy_typed_in_a_channel_targets_it(studio: Service, slack: FakeSlack) -> None:
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, "promote faq-bot")
    await post(
        studio,
        slash_body("/deploy", "faq-bot slack --env staging", response_url=slack.response_url("d")),
        content_type=FORM,
    )
    deployed = await responded(slack, "d")
    assert "staging" in deployed["text"] and "slack" in deployed["text"], deployed["text"]


async def test_a_slow_slash_command_says_it_is_working(
    tmp_path: Path, slack: FakeSlack, llm: FakeLLM
) -> None:
    settings = slack_settings(tmp_path, slack, llm_api_base=llm.base_url)
    async with running_service(settings) as studio:
        await dm(studio, slack, "newbot faq-bot")
        await dm(studio, slack, "set faq-bot model openai/fake-model")
        llm.stall(2.0, text="Slow but sure.")
        command = slash_body("/studio", "try faq-bot hi", response_url=slack.response_url("slow"))
        started = time.perf_counter()
        assert (await post(studio, command, content_type=FORM)).status_code == 200
        assert time.perf_counter() - started < 1.0  # acked at once
        for _ in range(300):
            said = [c.body["text"] for c in slack.calls_to("response_url:slow")]
            if len(said) >= 2:
                break
            await asyncio.sleep(0.02)
        assert said[0] == WORKING and "Slow but sure." in said[1]


async def test_a_token_pasted_to_the_studio_is_never_stored(
    studio: Service, slack: FakeSlack
) -> None:
    token = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
    reply = await dm(studio, slack, f"deploy faq-bot telegram {token}")
    assert token not in text_of(reply)
    async with studio.app.state.core.db.read_conn() as conn:
        from sqlalchemy import text

        stored = [str(p) for (p,) in (await conn.execute(text("select payload from inbox"))).all()]
    assert stored and all(token not in p for p in stored)
    assert any("[token removed]" in p for p in stored)


async def test_a_large_file_shows_progress_in_one_updated_message(
    studio: Service, slack: FakeSlack
) -> None:
    await dm(studio, slack, "newbot faq-bot")
    # 70 one-sentence paragraphs of ~190 characters: a passage each (a chunk holds 200).
    body = "\n\n".join(
        f"Section {n} explains refunds and returns " + "in detail " * 14 + "at last."
        for n in range(70)
    )
    big = slack.add_file("F2", body.encode(), name="handbook.md", mimetype="text/markdown")
    before = len(slack.calls_to("chat.postMessage"))
    await post(studio, event_body(message_event("faq-bot", subtype="file_share", files=[big])))
    for _ in range(1500):  # embedding 70 passages on a busy machine takes a while
        added = [c for c in slack.calls_to("chat.postMessage") if "Added handbook" in text_of(c)]
        if added:
            break
        await asyncio.sleep(0.02)
    assert added, [text_of(c) for c in slack.calls_to("chat.postMessage")]
    status = slack.calls_to("chat.postMessage")[before]
    assert text_of(status).startswith("Reading handbook.md: 0 of 70")
    updates = [text_of(c) for c in slack.calls_to("chat.update")]
    assert updates and "Read handbook.md: 70 passages." in updates[-1]
    assert all(c.body["channel"] == "D0001" for c in slack.calls_to("chat.update"))


async def test_a_flow_answers_each_branch_and_remembers_the_person_across_threads(
    studio: Service, slack: FakeSlack
) -> None:
    from tests.scenarios.test_pipeline_flow import SUPPORT

    await _live_in_channel(studio, **{k: v for k, v in SUPPORT.items() if k != "name"})
    said = 0

    async def say(text: str, ts: str | None = None, thread_ts: str | None = None) -> str:
        nonlocal said
        said += 1
        event = message_event(
            text, user="U0002", channel="C0001", channel_type="channel", ts=ts, thread_ts=thread_ts
        )
        assert (await post(studio, event_body(event))).status_code == 200
        return text_of((await posted(slack, said))[-1])

    assert "Billing help for you" in await say("a question about my bill")
    thread = new_ts()
    assert "What's your name?" in await say("hello", thread)
    assert "Thanks, Cy!" in await say("my name is Cy", thread_ts=thread)
    assert "Welcome back, Cy!" in await say("hi again")  # a new thread: a new conversation


async def test_a_colleague_pressing_someones_confirm_changes_nothing(
    studio: Service, slack: FakeSlack
) -> None:
    """In a channel everyone sees the buttons: a colleague's click is told whose question it
    is, and the question still stands for the person who asked."""
    await dm(studio, slack, "newbot faq-bot")
    await dm(studio, slack, "promote faq-bot")
    ts = new_ts()
    asked_in = mention_event("promote faq-bot production", channel="C0001", ts=ts)
    assert (await post(studio, event_body(asked_in))).status_code == 200
    asked = (await posted(slack, len(slack.calls_to("chat.postMessage")) + 1))[-1]
    confirm = next(b for b in asked.body["blocks"] if b["type"] == "actions")["elements"][0]

    async def click(user: str) -> str:
        before = len(slack.calls_to("chat.postMessage"))
        body = action_body(
            confirm["value"],
            action_id=confirm["action_id"],
            user=user,
            channel="C0001",
            message_ts=asked.body.get("ts", new_ts()),
        )
        assert (await post(studio, body, content_type=FORM)).status_code == 200
        return text_of((await posted(slack, before + 1))[-1])

    assert "Only the person who asked can answer that question" in await click("U0002")
    assert "Production: —" in text_of(await dm(studio, slack, "show faq-bot", user="U0002"))
    assert "production now runs v1" in await click("U0001")
