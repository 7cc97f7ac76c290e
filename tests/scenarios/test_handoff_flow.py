"""Human handoff end to end: a web end user's conversation handed to a Slack channel's thread
(the real slack-bolt and slack_sdk against the fake Slack Web API, signed events), the team's
answers reaching the web page, the bot silent until `/resume`; stats count it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.telegram.pacing import ChatPacer
from runtime.handoff_desk import NOBODY_CAME as NOBODY
from runtime.messages import IncomingMessage
from storage import handoffs as handoff_store
from storage.tables import InboxItem
from tests.adapters.slack.test_slack_flow import dm, post, responded, slack_settings
from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    _no_wait,
    member_of_local_team,
    tell,
)
from tests.adapters.telegram.test_telegram_studio import post as post_telegram_studio
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import FORM, event_body, message_event, new_ts, slash_body
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, secret_headers, token

SUPPORT: dict[str, Any] = {
    "name": "support-bot",
    "model": "offline",
    "pipeline": [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "human", "to": "human"}], "default": "answer"},
        },
        {"id": "answer", "kind": "template", "params": {"text": "I am a bot."}},
        {"id": "human", "kind": "handoff", "params": {"reason": "they asked for a person"}},
    ],
}
_inbox = InboxItem.__table__  # type: ignore[attr-defined]
ASKED = "I've asked a person from the team to help; they'll answer here."
SUPPORT_TOKEN = token(31)


@pytest.fixture
async def service(tmp_path: Path, slack: FakeSlack) -> AsyncIterator[Service]:
    slack.add_channel("C0001", "support", member=True)
    slack.add_channel("C0002", "elsewhere", member=False)
    # U0001 owns the workspace's team (made here, before anyone talks to the Studio).
    settings = slack_settings(tmp_path, slack, slack_owners="U0001")
    async with running_service(settings) as running:
        yield await as_the_workspace(running)


async def as_the_workspace(service: Service) -> Service:
    """The service, its client acting with an owner key of the Slack workspace's team: only
    that team may hand conversations over to the workspace's channels."""
    core = service.app.state.core
    workspace, _ = await core.adapter("slack")._workspace()
    made = await core.ops.create_api_key(
        team=f"slack-{workspace.lower()}", role="owner", name="tests"
    )
    return replace(service, key=made.key)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """`check()` once it is truthy (polling the service's background work)."""
    for _ in range(250):
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def live_support_bot(service: Service) -> str:
    """The bot with its handoff to #support set through the Studio, live on the web."""
    flow = SUPPORT["pipeline"]
    await service.call("POST", "/api/v1/bots/import", json={**SUPPORT, "pipeline": flow[1:2]})
    refused = await service.client.patch(
        "/api/v1/bots/support-bot", json={"pipeline": flow}, headers=service.auth()
    )
    assert refused.status_code == 422
    assert "step 'human': a handoff step needs somewhere to hand over" in refused.text
    said = await service.reply("/handoff support-bot to #support timeout 30")
    assert "hands conversations over to #support" in said, said
    await service.call("PATCH", "/api/v1/bots/support-bot", json={"pipeline": flow})
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": env})
    deployed = await service.call(
        "POST", "/api/v1/bots/support-bot/deployments", json={"channel": "web"}
    )
    return str(deployed["id"])


async def history(service: Service, deployment: str, session: str, after: int = 0) -> Any:
    response = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session, "after": after}
    )
    assert response.status_code == 200, response.text
    return response.json()


def thread_posts(slack: FakeSlack, thread: str) -> list[Call]:
    return [c for c in slack.calls_to("chat.postMessage") if c.body.get("thread_ts") == thread]


async def the_thread(service: Service) -> str:
    async with service.app.state.core.db.read_conn() as conn:
        (handoff,) = await handoff_store.open_handoffs(conn)
    assert (handoff.room_kind, handoff.room) == ("slack", "C0001")
    return handoff.thread


async def test_web_to_a_slack_thread_and_back(service: Service, slack: FakeSlack) -> None:
    deployment = await live_support_bot(service)
    first = (await service.chat(deployment, "hello")).json()
    assert first["reply"] == "I am a bot." and first["handoff"] is False
    session = first["session"]

    handed = (await service.chat(deployment, "I want a human <!channel>", session)).json()
    assert handed["reply"] == ASKED and handed["handoff"] is True
    (announced,) = slack.calls_to("chat.postMessage")
    text = announced.body["text"]
    assert announced.body["channel"] == "C0001" and "thread_ts" not in announced.body
    assert "support-bot hands a conversation over to you" in text
    assert f"Who: web:{session[:12]}, on the web chat" in text
    assert "Why: they asked for a person" in text
    assert "» web:" in text and ": hello" in text and "I am a bot." in text
    assert "I want a human &lt;!channel&gt;" in text  # escaped: it pings nobody
    assert "type resume in the thread to give the conversation back" in text  # no /resume: Slack
    thread = await the_thread(service)

    # a person answers in the thread; a redelivery of that event is not passed on again
    answer = message_event(
        "Hi, I'm Sam. What's your order number?",
        user="U0009",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    for _ in range(2):
        assert (await post(service, event_body(answer))).status_code == 200
    shown = (await history(service, deployment, session))["total"]

    async def answered() -> Any:
        data = await history(service, deployment, session, after=shown - 1)
        return data["messages"] if data["messages"][-1]["role"] == "human" else None

    await eventually(answered, "the team's answer on the web page")

    # that inbox item handled again (as after a crash before it was marked done): kept once
    key = f"handoff:slack:C0001:{answer['ts']}"
    async with service.app.state.core.db.read_conn() as conn:
        item = (await conn.execute(select(_inbox).where(_inbox.c.dedupe_key == key))).one()
    kept = (await history(service, deployment, session))["total"]
    await service.app.state.core.runtime.process(item.id, IncomingMessage(**item.payload))
    assert (await history(service, deployment, session))["total"] == kept

    # the end user writes again: relayed to the thread, and the bot says nothing
    again = (await service.chat(deployment, "It is 42", session)).json()
    assert again == {**again, "reply": "", "handoff": True}
    relayed = await eventually(lambda: thread_posts(slack, thread), "the relay in the thread")
    assert relayed[-1].body["text"] == f"web:{session[:12]}: It is 42"

    slackbot = message_event(
        "Reminder: lunch",
        user="USLACKBOT",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    assert (await post(service, event_body(slackbot))).status_code == 200  # not a person: dropped
    later = message_event(
        "Found it: it ships today.",
        user="U0009",
        channel="C0001",
        channel_type="channel",
        thread_ts=thread,
    )
    assert (await post(service, event_body(later))).status_code == 200

    async def both_answers() -> Any:
        messages = (await history(service, deployment, session))["messages"]
        humans = [m["text"] for m in messages if m["role"] == "human"]
        return humans if len(humans) >= 2 else None

    humans = await eventually(both_answers, "both answers on the web page")
    assert humans == ["Hi, I'm Sam. What's your order number?", "Found it: it ships today."]

    # only the whole message "resume" ends it (Slack sends no `/resume`): this is an answer
    for said in ("Resume your order from the cart page", " Resume "):
        event = message_event(
            said, user="U0009", channel="C0001", channel_type="channel", thread_ts=thread
        )
        assert (await post(service, event_body(event))).status_code == 200

    async def handed_back() -> bool:
        return not (await history(service, deployment, session))["handoff"]

    await eventually(handed_back, "the conversation handed back")
    told = await eventually(
        lambda: [c for c in thread_posts(slack, thread) if "answers again" in c.body["text"]],
        "the thread told",
    )
    assert told[-1].body["text"].startswith("slack:U0009 handed the conversation back")
    data = await history(service, deployment, session)
    humans = [m["text"] for m in data["messages"] if m["role"] == "human"]
    assert humans[-1] == "Resume your order from the cart page"
    after = (await service.chat(deployment, "hello again", session)).json()
    assert after["reply"] == "I am a bot." and after["handoff"] is False

    stats = await service.call("GET", "/api/v1/bots/support-bot/stats")
    assert stats["handoffs"] == 1 and stats["handoff_first_answer_p50_s"] is not None


# -- a Telegram group ------------------------------------------------------------------------

GROUP = -1001234567890
END_USER = 55


@pytest.fixture
async def tg_service(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    telegram.add_bot(SUPPORT_TOKEN, username="support_bot")
    settings = service_settings(
        tmp_path,
        public_url="https://studio.example.com",
        telegram_api_url=telegram.base_url,
        telegram_builder_token=BUILDER,
    )
    async with running_service(settings) as running:
        yield running


def in_group(text: str, *, user_id: int = ALICE, reply_to: int | None = None) -> dict[str, Any]:
    """A message in the team's group; a reply to the Studio bot's message `reply_to`."""
    update = message_update(text, chat_id=GROUP, chat_type="supergroup", user_id=user_id)
    if reply_to is not None:
        update["message"]["reply_to_message"] = {
            "message_id": reply_to,
            "from": {"id": int(BUILDER.split(":")[0]), "is_bot": True, "first_name": "Studio"},
            "chat": update["message"]["chat"],
            "date": update["message"]["date"],
            "text": "…",
        }
    return update


def sent(telegram: FakeTelegram, token: str, chat: int) -> list[Call]:
    return [
        c
        for c in telegram.calls_to("sendMessage", token=token)
        if str(c.body["chat_id"]) == str(chat)
    ]


async def test_telegram_end_user_and_a_team_group(
    tg_service: Service, telegram: FakeTelegram
) -> None:
    service = tg_service
    service.app.state.core.adapter("telegram").pacer = ChatPacer(
        sleep=_no_wait
    )  # tested on its own
    await member_of_local_team(service, telegram)
    flow = SUPPORT["pipeline"]
    await service.call("POST", "/api/v1/bots/import", json={**SUPPORT, "pipeline": flow[1:2]})
    refused = await tell(service, telegram, "/handoff support-bot to here")
    assert "A DM cannot take handed-over conversations" in refused.body["text"]

    assert await post_studio(service, in_group("/handoff@chat_studio_bot support-bot to here"))
    told = await eventually(lambda: sent(telegram, BUILDER, GROUP), "the Studio's answer")
    assert f"only an administrator of Group {GROUP} can hand conversations" in told[-1].body["text"]
    telegram.set_chat_member(GROUP, ALICE, "administrator")
    assert await post_studio(service, in_group("/handoff@chat_studio_bot support-bot to here"))
    told = await eventually(lambda: sent(telegram, BUILDER, GROUP)[1:], "the Studio's answer")
    assert f"hands conversations over to Group {GROUP}" in told[-1].body["text"]
    assert "reply /resume to one of them to give it back" in told[-1].body["text"]
    await service.call("PATCH", "/api/v1/bots/support-bot", json={"pipeline": flow})
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": env})
    deployed = await service.call(
        "POST",
        "/api/v1/bots/support-bot/deployments",
        json={"channel": "telegram", "token": SUPPORT_TOKEN},
    )
    hook = telegram.webhook(SUPPORT_TOKEN)
    assert hook is not None

    async def end_user_says(text: str) -> None:
        update = message_update(text, chat_id=END_USER, user_id=END_USER)
        response = await service.client.post(
            f"/telegram/bots/{deployed['id']}",
            json=update,
            headers=secret_headers(str(hook["secret_token"])),
        )
        assert response.status_code == 200

    await end_user_says("I need a human")
    asked = await eventually(lambda: sent(telegram, SUPPORT_TOKEN, END_USER), "the bot's word")
    assert asked[-1].body["text"] == ASKED
    posted = await eventually(lambda: sent(telegram, BUILDER, GROUP)[2:], "the handoff post")
    assert "support-bot hands a conversation over to you" in posted[0].body["text"]
    assert "Who: telegram:55, on Telegram" in posted[0].body["text"]
    async with service.app.state.core.db.read_conn() as conn:
        (handoff,) = await handoff_store.open_handoffs(conn)
    assert (handoff.room_kind, handoff.room) == ("telegram", str(GROUP))

    # someone in the group but not in the team replies: not passed on, told so once
    outsider = [in_group(said, user_id=8002, reply_to=int(handoff.thread)) for said in "ab"]
    for update in outsider:
        assert await post_studio(service, update)
    (no,) = await eventually(lambda: sent(telegram, BUILDER, GROUP)[3:], "the outsider told")
    assert "Only members of the bot's team in Chat Studio can answer here" in no.body["text"]
    assert no.body["reply_parameters"]["message_id"] == outsider[0]["message"]["message_id"]

    # a person of the team replies to the post: the end user gets it from the bot
    code = (await service.call("POST", "/api/v1/invites"))["code"]
    assert "Welcome" in (await tell(service, telegram, f"/join {code}", user_id=8001)).body["text"]
    assert await post_studio(
        service, in_group("Sam here, how can I help?", user_id=8001, reply_to=int(handoff.thread))
    )
    answered = await eventually(
        lambda: sent(telegram, SUPPORT_TOKEN, END_USER)[1:], "the team's answer"
    )
    assert answered[0].body["text"] == "Sam here, how can I help?"

    # a photo (no text) as a reply: not passed on, and Sam is told so
    photo = in_group("", user_id=8001, reply_to=int(handoff.thread))
    del photo["message"]["text"]
    photo["message"]["photo"] = [{"file_id": "p1", "file_unique_id": "u1", "width": 9, "height": 9}]
    assert await post_studio(service, photo)
    (only,) = await eventually(lambda: sent(telegram, BUILDER, GROUP)[4:], "text only")
    assert only.body["text"].startswith("Only text is passed on")
    assert only.body["reply_parameters"]["message_id"] == photo["message"]["message_id"]

    # the end user's next message goes to the group as a reply to the post; the bot is silent
    await end_user_says("My order is late")
    relayed = await eventually(lambda: sent(telegram, BUILDER, GROUP)[5:], "the relay")
    assert relayed[0].body["text"] == "telegram:55: My order is late"
    assert relayed[0].body["reply_parameters"]["message_id"] == int(handoff.thread)
    async with service.app.state.core.db.read_conn() as conn:
        (handoff,) = await handoff_store.open_handoffs(conn)
    (relay_id,) = [post for post in handoff.posts if post != handoff.thread]

    # /resume (the whole message) as a reply to the relayed message ends it
    resume = in_group("/resume", user_id=8001, reply_to=int(relay_id))
    assert await post_studio(service, resume)
    back = await eventually(lambda: sent(telegram, BUILDER, GROUP)[6:], "the group told")
    assert "handed the conversation back: support-bot answers again" in back[0].body["text"]
    await end_user_says("hello")
    again = await eventually(lambda: sent(telegram, SUPPORT_TOKEN, END_USER)[2:], "the bot")
    assert again[0].body["text"] == "I am a bot."

    # /resume in the group that replies to nothing of a handoff: a short answer
    assert await post_studio(service, in_group("/resume"))
    hint = await eventually(lambda: sent(telegram, BUILDER, GROUP)[7:], "the hint")
    assert "gives a handed-over conversation back to its bot" in hint[0].body["text"]


async def test_a_group_takes_only_what_its_administrators_set(
    tg_service: Service, telegram: FakeTelegram
) -> None:
    """Being in a team and knowing a group's chat id is not enough: only an administrator of
    the group (checked with Telegram) routes conversations into it, however it is set."""
    service = tg_service
    await member_of_local_team(service, telegram)
    await service.import_bot("faq-bot")
    other = -1009999999999  # another team's group, whose id someone learnt
    refused = await tell(service, telegram, f"/handoff faq-bot to {other}")
    assert f"only an administrator of Group {other} can hand conversations" in refused.body["text"]
    telegram.set_chat_member(other, ALICE, "creator")
    taken = await tell(service, telegram, f"/handoff faq-bot to {other}")
    assert f"hands conversations over to Group {other}" in taken.body["text"]

    # REST and YAML import check a changed target the same way; an API key is nobody on Telegram
    target = {"channel": "telegram", "target": str(GROUP), "name": "Team"}
    for method, path, body in (
        ("PATCH", "/api/v1/bots/faq-bot", {"handoff": target}),
        ("POST", "/api/v1/bots/import", {"name": "other-bot", "handoff": target}),
    ):
        response = await service.client.request(method, path, json=body, headers=service.auth())
        assert response.status_code == 422, response.text
        assert "say /handoff" in response.text and "to here in the group" in response.text
    shown = await service.call("GET", "/api/v1/bots/faq-bot")
    assert shown["draft"]["handoff"]["target"] == str(other)  # nothing changed
    kept = await service.call(
        "PATCH",
        "/api/v1/bots/faq-bot",
        json={"handoff": {**target, "target": str(other), "timeout_minutes": 5}},
    )
    assert kept["draft"]["handoff"]["timeout_minutes"] == 5  # the same target: not asked again


async def post_studio(service: Service, update: dict[str, Any]) -> bool:
    return await post_telegram_studio(service, update) == 200


# -- endings and refusals ----------------------------------------------------------------------


async def handed_over(service: Service, slack: FakeSlack) -> tuple[str, str, str]:
    """A live support-bot on the web whose end user was just handed to #support: the
    deployment, the web session and the Slack thread."""
    deployment = await live_support_bot(service)
    handed = (await service.chat(deployment, "a human please")).json()
    assert handed["handoff"] is True
    return deployment, handed["session"], await the_thread(service)


async def test_the_team_reads_what_a_guard_would_refuse(service: Service, slack: FakeSlack) -> None:
    """During a handoff the end user's words reach the team even when a guardrail would refuse
    them the bot (personal data masked still), named as the bot remembers them."""
    deployment, session, thread = await handed_over(service, slack)
    guard = {"guardrails": {"pii": True, "blocked_terms": ["refund"]}}
    await service.call("PATCH", "/api/v1/bots/support-bot", json=guard)
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/support-bot/promote", json={"to": env})
    user = f"web:{session[:12]}"
    assert "Ana" in await service.reply(f"/memory support-bot {user} set name Ana")
    said = (await service.chat(deployment, "A refund! Mail me at ana@example.com", session)).json()
    assert said == {**said, "reply": "", "handoff": True}
    (relayed,) = await eventually(lambda: thread_posts(slack, thread), "the relay")
    assert relayed.body["text"] == f"Ana ({user}): A refund! Mail me at [email]"
    data = await history(service, deployment, session)
    assert data["messages"][-1]["text"] == "A refund! Mail me at [email]"


async def test_a_handoff_nobody_answers_ends_by_itself(service: Service, slack: FakeSlack) -> None:
    from storage.tables import utcnow

    deployment, session, thread = await handed_over(service, slack)
    desk = service.app.state.core.runtime.handoffs
    assert await desk.expire(now=utcnow() + timedelta(minutes=29)) == 0  # not yet
    assert await desk.expire(now=utcnow() + timedelta(minutes=31)) == 1
    (note,) = thread_posts(slack, thread)
    assert note.body["text"].startswith("Nobody wrote here for 30 minutes: the handoff ended")
    data = await history(service, deployment, session)
    assert data["handoff"] is False
    assert data["messages"][-1] == {**data["messages"][-1], "role": "assistant", "text": NOBODY}
    assert (await service.chat(deployment, "hi", session)).json()["reply"] == "I am a bot."


async def test_a_handoff_answered_on_another_worker_does_not_time_out_here(
    service: Service, slack: FakeSlack
) -> None:
    from sqlalchemy import text

    from storage.tables import utcnow

    deployment, session, thread = await handed_over(service, slack)
    core = service.app.state.core
    later = utcnow() + timedelta(minutes=60)
    async with core.db.write_conn() as conn:  # answered elsewhere: this desk has not heard yet
        await conn.execute(text("update handoff set expires_at = :t"), {"t": later})
    assert await core.runtime.handoffs.expire(now=utcnow() + timedelta(minutes=31)) == 0
    assert thread_posts(slack, thread) == []
    assert (await history(service, deployment, session))["handoff"] is True


async def test_the_end_user_starting_over_ends_the_handoff(
    service: Service, slack: FakeSlack
) -> None:
    deployment, session, thread = await handed_over(service, slack)
    assert (await service.chat(deployment, "/reset", session)).json()["handoff"] is False
    (note,) = thread_posts(slack, thread)
    assert "started a new conversation: the handoff has ended" in note.body["text"]
    late = message_event(
        "Hello?", user="U0009", channel="C0001", channel_type="channel", thread_ts=thread
    )
    assert (await post(service, event_body(late))).status_code == 200  # not a handoff's now
    assert not service.app.state.core.runtime.handoffs.in_room("slack", "C0001", thread)


async def test_a_room_that_refuses_the_post_leaves_no_handoff_open(
    service: Service, slack: FakeSlack
) -> None:
    deployment = await live_support_bot(service)
    slack.fail("chat.postMessage", "not_in_channel")
    reply = (await service.chat(deployment, "a human please")).json()
    assert reply["reply"] == "I can't answer that yet." and reply["handoff"] is False
    async with service.app.state.core.db.read_conn() as conn:
        assert await handoff_store.open_handoffs(conn) == []
    stats = await service.call("GET", "/api/v1/bots/support-bot/stats")
    assert (stats["errors"], stats["handoffs"]) == (1, 0)
    tried = await service.reply("/try support-bot a human please")
    assert "Handed over to #support (not in /try: nobody was asked)" in tried


async def test_handoff_targets_are_checked(service: Service, slack: FakeSlack) -> None:
    await service.import_bot("faq-bot")
    assert "the app is not in #elsewhere: invite the app there" in await service.reply(
        "/handoff faq-bot to #elsewhere"
    )
    assert "Slack has no channel #nowhere" in await service.reply("/handoff faq-bot to #nowhere")
    assert "Say which channel" in await service.reply("/handoff faq-bot to here")
    assert "Say where first" in await service.reply("/handoff faq-bot timeout 5")
    assert "hands nothing over" in await service.reply("/handoff faq-bot")
    elsewhere = {"channel": "slack", "target": "C0002", "name": "#support"}
    patched = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"handoff": elsewhere}, headers=service.auth()
    )
    assert patched.status_code == 422 and "the app is not in #elsewhere" in patched.text
    said = await service.reply("/handoff faq-bot to C0001 tool off")
    assert "hands conversations over to #support" in said and "Nothing hands over yet" in said
    shown = await service.say("/show faq-bot")
    assert "#support (Slack) · back to the bot after 60 min" in str(shown)
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    await service.reply("/handoff faq-bot timeout 15")
    diff = await service.reply("/diff faq-bot")
    assert "handoff: #support (Slack) · back to the bot after 60 min" in diff
    assert "→ #support (Slack) · back to the bot after 15 min" in diff
    exported = await service.call("GET", "/api/v1/bots/faq-bot/export")
    assert "handoff:\n  channel: slack\n  target: C0001\n  name: '#support'" in exported
    assert "no longer hands conversations" in await service.reply("/handoff faq-bot off")
    assert "hands nothing over already" in await service.reply("/handoff faq-bot off")
    resume = await service.reply("/resume")  # outside a handoff's thread
    assert resume.startswith("/resume gives a handed-over conversation back to its bot")


async def test_without_slack_a_slack_target_is_refused(service_without_slack: Service) -> None:
    await service_without_slack.import_bot("faq-bot")
    said = await service_without_slack.reply("/handoff faq-bot to #support")
    assert said.startswith("Slack is not configured here (set SLACK_BOT_TOKEN")
    said = await service_without_slack.reply("/handoff faq-bot to -1001")
    assert said.startswith("the Studio's Telegram bot is not configured here")
    for handoff, says in [
        ({"channel": "telegram", "target": "C0001"}, "'C0001' is no room's id on the Studio's"),
        ({"channel": "slack", "target": "C0001"}, "Slack is not configured here (set SLACK_"),
        ({"channel": "email", "target": "ops"}, "channel 'email' has no rooms for the team"),
        ({"channel": "web", "target": "ops"}, "(channels that do: slack or telegram)"),
    ]:
        patched = await service_without_slack.client.patch(
            "/api/v1/bots/faq-bot",
            json={"handoff": {**handoff, "name": "#support"}},
            headers=service_without_slack.auth(),
        )
        assert patched.status_code in (422, 501) and says in patched.text, patched.text
        assert patched.status_code == 422 or "not configured" in patched.text


@pytest.fixture
async def service_without_slack(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(service_settings(tmp_path)) as running:
        yield running


async def test_a_route_to_a_human_is_built_by_conversation(
    service: Service, slack: FakeSlack
) -> None:
    await service.import_bot("faq-bot")
    refused = await service.reply('/route faq-bot "agent" to human')
    assert "a handoff step needs somewhere to hand over: /handoff faq-bot to #channel" in refused
    await service.reply("/handoff faq-bot to #support")
    routed = await service.reply('/route faq-bot "agent" to human')
    assert "Added handoff step `human`" in routed, routed
    assert "`human` handoff (answers)" in await service.reply("/flow faq-bot")
    tried = await service.reply("/try faq-bot I want an agent")
    assert tried.startswith("*faq-bot* (draft): I've asked a person from the team")
    assert "Handed over to #support (not in /try" in tried
    kept = await service.reply("/handoff faq-bot off")  # its handoff step needs it
    assert "step 'human': a handoff step needs somewhere to hand over" in kept
    assert "#support (Slack)" in await service.reply("/show faq-bot")  # nothing changed
    assert not slack.calls_to("chat.postMessage")  # /try asked nobody


async def test_a_slack_end_user_and_the_team_in_another_channel(
    service: Service, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built, promoted and deployed from Slack; the end user in #general, the team in #support.
    The team's answer reaches the end user's thread under the bot's name, and while people have
    the conversation no "thinking…" appears for the bot."""
    monkeypatch.setattr("adapters.slack.channel.THINKING_AFTER_S", 0.01)
    slack.add_channel("C0003", "general", member=True)
    for said in (
        "newbot desk-bot",
        "handoff desk-bot to #support",
        'route desk-bot "human" to human',
        "promote desk-bot",
        "promote desk-bot production",
        "yes",
    ):
        await dm(service, slack, said)
    deploy = slash_body("/deploy", "desk-bot slack C0003", response_url=slack.response_url("d"))
    assert (await post(service, deploy, content_type=FORM)).status_code == 200
    assert "live on slack" in (await responded(slack, "d"))["text"]

    ts = new_ts()
    asked = message_event(
        "A human, please", user="U0002", channel="C0003", channel_type="channel", ts=ts
    )
    assert (await post(service, event_body(asked))).status_code == 200

    def in_user_thread() -> list[Call]:
        sent = ("chat.postMessage", "chat.update")
        return [c for c in slack.calls if c.method in sent and c.body["channel"] == "C0003"]

    await eventually(
        lambda: [c for c in in_user_thread() if c.body["text"] == ASKED], "the bot's word"
    )
    thread = await eventually(lambda: the_open_thread(service), "the handoff")
    before = len(in_user_thread())  # the word, and the "thinking…" it replaced, if shown
    answer = message_event(
        "On it!", user="U0009", channel="C0001", channel_type="channel", thread_ts=thread
    )
    assert (await post(service, event_body(answer))).status_code == 200
    (answered,) = await eventually(lambda: in_user_thread()[before:], "the team's answer")
    assert answered.method == "chat.postMessage" and answered.body["thread_ts"] == ts
    assert answered.body == {**answered.body, "text": "On it!", "username": "desk-bot"}

    again = message_event(
        "Thanks", user="U0002", channel="C0003", channel_type="channel", thread_ts=ts
    )
    assert (await post(service, event_body(again))).status_code == 200
    relayed = await eventually(lambda: thread_posts(slack, thread), "the relay")
    assert relayed[0].body["text"] == "slack:U0002: Thanks"
    await asyncio.sleep(0.1)  # long enough for a "thinking…" to show, were there one
    assert len(in_user_thread()) == before + 1


async def the_open_thread(service: Service) -> str | None:
    async with service.app.state.core.db.read_conn() as conn:
        found = await handoff_store.open_handoffs(conn)
    return found[0].thread if found else None


async def test_another_team_cannot_hand_over_to_the_workspaces_channels(service: Service) -> None:
    local = (service.settings.data_dir / "local.key").read_text().strip()  # the `local` team
    other = replace(service, key=local)
    await other.call("POST", "/api/v1/bots/import", json={**SUPPORT, "pipeline": []})
    said = await other.reply("/handoff support-bot to #support")
    assert "the Slack workspace this service is installed in is another team's" in said
    assert "handoff" not in (await other.call("GET", "/api/v1/bots/support-bot"))["draft"]
