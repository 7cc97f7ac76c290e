"""A team makes its bot speak first by chatting with the Studio: a morning message to a Slack
channel, a daily tip to each end user (on Telegram), a follow-up when an end user goes quiet,
and the bot's stats every day in #ops. Promoted, then driven by the scheduler's `run_due` with
a chosen instant: each arrives once, on the fake Slack and Telegram, and nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.telegram.pacing import ChatPacer
from builders.cron import next_fire
from storage.tables import utcnow
from tests.adapters.slack.test_slack_flow import dm, responded, slack_settings, text_of
from tests.adapters.slack.test_slack_flow import post as post_slack
from tests.adapters.telegram.test_telegram_bots import secret_of, send_update
from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    _no_wait,
    member_of_local_team,
)
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.slack import Call, FakeSlack
from tests.fakes.slack_payloads import FORM, event_body, mention_event, slash_body
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, token
from tests.people import bot_id
from tests.scenarios.test_handoff_flow import (
    GROUP,
    as_the_workspace,
    eventually,
    in_group,
    post_telegram_studio,
    sent,
)

BOT_TOKEN = token(61)
END_USER = 55
LISBON = "Europe/Lisbon"


@pytest.fixture
async def service(
    tmp_path: Path, slack: FakeSlack, telegram: FakeTelegram
) -> AsyncIterator[Service]:
    slack.add_channel("C0003", "general", member=True)
    slack.add_channel("C0004", "ops", member=True)
    slack.add_channel("C0005", "quiet", member=False)
    telegram.add_bot(BOT_TOKEN, username="news_bot")
    settings = slack_settings(
        tmp_path,
        slack,
        slack_owners="U0001",
        public_url="https://studio.example.com",
        telegram_api_url=telegram.base_url,
    )
    async with running_service(settings) as running:
        running.app.state.core.adapter("telegram").pacer = ChatPacer(sleep=_no_wait)
        yield await as_the_workspace(running)


def posts_in(slack: FakeSlack, channel: str) -> list[Call]:
    return [c for c in slack.calls_to("chat.postMessage") if c.body.get("channel") == channel]


def texts_to(telegram: FakeTelegram, chat: int) -> list[str]:
    calls = telegram.calls_to("sendMessage", token=BOT_TOKEN)
    return [str(c.body["text"]) for c in calls if str(c.body["chat_id"]) == str(chat)]


async def test_a_team_schedules_by_chatting_and_each_arrives_once(
    service: Service, slack: FakeSlack, telegram: FakeTelegram
) -> None:
    # the bot, live on Slack (#general) and Telegram, where an end user has talked to it
    await service.reply("/newbot news-bot")
    await service.reply("/set news-bot fallback Ask me anything.")
    await service.reply("/promote news-bot")
    await service.say("/promote news-bot production")
    await service.reply("yes")
    await service.call(
        "POST", "/api/v1/bots/news-bot/deployments", json={"channel": "slack", "target": "C0003"}
    )
    deployed = await service.call(
        "POST",
        "/api/v1/bots/news-bot/deployments",
        json={"channel": "telegram", "token": BOT_TOKEN},
    )
    secret = secret_of(telegram, BOT_TOKEN)

    async def end_user_says(text: str, answers: int) -> None:
        update = message_update(text, chat_id=END_USER, user_id=END_USER)
        assert (await send_update(service, deployed["id"], update, secret)).is_success
        await eventually(lambda: len(texts_to(telegram, END_USER)) >= answers, "its answer")

    await end_user_says("hello", 1)

    # what the team says to the Studio
    refused = await service.reply('/schedule news-bot "0 9 * * *" "Hi" to #quiet')
    assert "the app is not in #quiet: invite the app there" in refused
    morning = await service.reply(
        f'/schedule news-bot "0 9 * * *" "Good morning, #general!" to #general --tz {LISBON}'
    )
    assert (
        morning.startswith("Scheduled s1 on *news-bot*'s draft") and "goes to #general" in morning
    )
    tip = await service.reply(f'/schedule "0 9 * * *" "Daily tip: ask me anything." --tz {LISBON}')
    assert "Scheduled s2" in tip and "each end user of the environment" in tip
    quiet = await service.reply('/followup news-bot after 30m "Still there?"')
    assert quiet.startswith("Added follow-up f1")
    report = await service.reply(f"/stats news-bot daily at 9:00 in #ops --tz {LISBON}")
    assert "I post *news-bot*'s stats for the last 24 hours in #ops" in report
    assert "not live yet" in await service.reply("/schedule news-bot list")
    await service.reply("/promote news-bot")
    await service.say("/promote news-bot production")
    assert "v2" in await service.reply("yes")
    await end_user_says("thanks", 2)  # the live version has a follow-up now: armed

    # the next 09:00 in Lisbon, and late enough for the follow-up (30 minutes after the answer)
    fire = next_fire("0 9 * * *", LISBON, utcnow())
    assert fire is not None
    now = max(fire, utcnow() + timedelta(minutes=31)) + timedelta(minutes=1)
    scheduler = service.app.state.core.scheduler
    await scheduler.run_due(now)

    (posted,) = await eventually(lambda: posts_in(slack, "C0003"), "the morning message")
    assert posted.body["text"] == "Good morning, #general!" and "thread_ts" not in posted.body
    assert posted.body["username"] == "news-bot"
    (stats,) = await eventually(lambda: posts_in(slack, "C0004"), "the stats in #ops")
    assert "news-bot" in stats.body["text"] and "thread_ts" not in stats.body
    await slack.wait_for("files.completeUploadExternal")  # the chart of that traffic, beside it
    [chart] = slack.calls_to("files.completeUploadExternal")
    assert chart.body["channel_id"] == "C0004"
    assert [f["title"] for f in chart.body["files"]] == ["news-bot-stats-24h.png"]
    await eventually(lambda: len(texts_to(telegram, END_USER)) >= 4, "the tip and the follow-up")
    assert sorted(texts_to(telegram, END_USER)[2:]) == [
        "Daily tip: ask me anything.",
        "Still there?",
    ]

    # once: the same instant, and a little later, send nothing again
    await scheduler.run_due(now)
    await scheduler.run_due(now + timedelta(minutes=5))
    await service.reply("/bots")  # a round trip: anything sent meanwhile would have arrived
    assert len(posts_in(slack, "C0003")) == 1 and len(posts_in(slack, "C0004")) == 1
    assert len(texts_to(telegram, END_USER)) == 4

    listed = await service.reply("/schedule news-bot list")
    assert listed.count("sent (1 sent, 0 failed)") == 2  # production's run of s1 and of s2
    reports = await service.reply("/stats news-bot reports")
    assert "→ #ops" in reports and "sent (1 sent, 0 failed)" in reports

    # the next day Slack refuses the post (the app was removed from #ops): the run says why
    assert "Paused schedule s1" in await service.reply("/schedule news-bot pause s1")
    slack.fail("chat.postMessage", "not_in_channel")
    await scheduler.run_due(now + timedelta(days=1))
    reports = await service.reply("/stats news-bot reports")
    assert "failed" in reports and "the app is not in that channel" in reports, reports


async def live_news_bot(service: Service) -> None:
    """news-bot, promoted to staging and production."""
    await service.import_bot("news-bot")
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/news-bot/promote", json={"to": env})


async def in_channel(service: Service, slack: FakeSlack, text: str, channel: str) -> str:
    """`text` said to the Studio in a Slack channel (a mention); its answer there."""
    before = len(posts_in(slack, channel))
    event = mention_event(f"<@UBOT> {text}", user="U0001", channel=channel)
    assert (await post_slack(service, event_body(event))).status_code == 200
    answers = await eventually(lambda: posts_in(slack, channel)[before:], "the Studio's answer")
    return text_of(answers[-1])


async def test_here_in_a_slack_channel_is_that_channel(service: Service, slack: FakeSlack) -> None:
    await live_news_bot(service)
    await service.call(
        "POST", "/api/v1/bots/news-bot/deployments", json={"channel": "slack", "target": "C0003"}
    )
    # only a channel the bot is deployed in takes its schedules (and answers what follows there)
    said = await in_channel(service, slack, 'schedule news-bot "0 9 * * *" "Hi" to here', "C0004")
    assert "the bot has no Slack deployment in that channel: deploy it there first" in said
    await service.call(
        "POST", "/api/v1/bots/news-bot/deployments", json={"channel": "slack", "target": "C0004"}
    )
    said = await in_channel(service, slack, 'schedule news-bot "0 9 * * *" "Hi" to here', "C0004")
    assert "goes to #ops at `0 9 * * *`" in said, said
    (schedule,) = (await service.call("GET", "/api/v1/bots/news-bot"))["draft"]["schedules"]
    assert (schedule["to"], schedule["to_name"]) == ("slack:C0004", "#ops")
    said = await in_channel(service, slack, "stats news-bot daily at 9:00 here", "C0004")
    assert "I post *news-bot*'s stats for the last 24 hours in #ops" in said, said
    other = (await service.app.state.core.ops.create_team("acme")).key  # not the workspace's
    for text in ("/newbot acme-bot", "/stats acme-bot daily at 9:00 in #ops"):
        response = await service.client.post(
            "/api/v1/studio/messages", headers=service.auth(other), json={"text": text}
        )
    assert response.json()["reply"] == (
        "the Slack workspace this service is installed in is another team's: post to a room of "
        "your own team"
    )
    # a slash command typed in #ops answers in the caller's DM, and `here` is still #ops
    await service.call("DELETE", "/api/v1/bots/news-bot/schedules/s1")
    slash = slash_body(
        "/studio",
        'schedule news-bot "0 9 * * *" "We are here" to here',
        channel="C0004",
        response_url=slack.response_url("here"),
    )
    assert (await post_slack(service, slash, content_type=FORM)).status_code == 200
    assert "goes to #ops" in (await responded(slack, "here"))["text"]
    slash = slash_body(
        "/stats",
        "news-bot daily at 8:00 here",
        channel="C0004",
        response_url=slack.response_url("st"),
    )
    assert (await post_slack(service, slash, content_type=FORM)).status_code == 200
    assert "in #ops" in (await responded(slack, "st"))["text"]
    # in the app's DM, `here` is no place for a schedule
    dm_said = await dm(service, slack, 'schedule news-bot "0 9 * * *" "Hi" to here')
    assert "A DM is no place for a schedule: /schedule news-bot ... to #channel" in text_of(dm_said)


@pytest.fixture
async def tg_service(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    telegram.add_bot(BOT_TOKEN, username="news_bot")
    settings = service_settings(
        tmp_path,
        public_url="https://studio.example.com",
        telegram_api_url=telegram.base_url,
        telegram_builder_token=BUILDER,
    )
    async with running_service(settings) as running:
        running.app.state.core.adapter("telegram").pacer = ChatPacer(sleep=_no_wait)
        yield running


async def test_here_in_a_telegram_group_is_that_group(
    tg_service: Service, telegram: FakeTelegram
) -> None:
    """`here` said to the Studio's bot in a Telegram group by a member of the team: a schedule
    to the group (once the bot is in it) and a report posted there."""
    service = tg_service
    core = service.app.state.core
    await member_of_local_team(service, telegram)
    await live_news_bot(service)
    deployed = await service.call(
        "POST",
        "/api/v1/bots/news-bot/deployments",
        json={"channel": "telegram", "token": BOT_TOKEN},
    )

    async def in_the_group(text: str) -> str:
        before = len(sent(telegram, BUILDER, GROUP))
        assert await post_telegram_studio(service, in_group(text)) == 200
        told = await eventually(lambda: sent(telegram, BUILDER, GROUP)[before:], "the answer")
        return str(told[-1].body["text"])

    # the group's other talk, even about schedules, is not the Studio's
    assert await post_telegram_studio(service, in_group("/schedule news-bot list")) == 200

    schedule = '/schedule news-bot "0 9 * * *" "Hi" to here'
    said = await in_the_group(schedule)
    assert f"Telegram chat {GROUP} has not started the bot" in said, said
    update = message_update("hello", chat_id=GROUP, chat_type="supergroup", user_id=ALICE)
    secret = secret_of(telegram, BOT_TOKEN)
    assert (await send_update(service, deployed["id"], update, secret)).is_success
    await eventually(lambda: sent(telegram, BOT_TOKEN, GROUP), "the bot's answer in the group")
    said = await in_the_group(schedule)
    assert f"goes to Telegram group {GROUP} at <code>0 9 * * *</code>" in said, said
    (stored,) = (await service.call("GET", "/api/v1/bots/news-bot"))["draft"]["schedules"]
    assert (stored["to"], stored["to_name"]) == (f"telegram:{GROUP}", f"Telegram group {GROUP}")

    said = await in_the_group("/stats news-bot daily at 9:00 here")
    assert f"stats for the last 24 hours in Telegram group {GROUP}" in said, said
    (report,) = await core.scheduler.reports(await bot_id(service, "news-bot"))
    assert report.next_run is not None
    await core.scheduler.run_due(report.next_run + timedelta(minutes=1))
    posted = await eventually(lambda: sent(telegram, BUILDER, GROUP), "the stats in the group")
    assert "news-bot" in str(posted[-1].body["text"])
