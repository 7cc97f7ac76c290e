"""Proactive messages on each channel, through the real client libraries against the fakes
(aiogram to the fake Bot API, slack_sdk to the fake Web API; the web keeps them in the history):
triggers, schedules to a place, and what is refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.channel import SlackChannel
from adapters.telegram.bots import TelegramBots
from adapters.web.channel import WebChannel
from runtime.cipher import Cipher
from runtime.messages import Address, IncomingMessage
from runtime.runtime import NotLiveError, Runtime
from runtime.scheduler.types import ProactiveError, UnknownEndUserError
from storage.database import Database
from storage.deployments import DeploymentRepository
from tests.fakes.llm import FakeLLM
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import token
from tests.runtime.scheduler.conftest import World, hand_over, make_world


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


CHAT = 555  # a Telegram chat that started the bot
THREAD = "C0HELP:1700000000.000100"  # a Slack thread where an end user talked to the bot


@dataclass
class Platforms:
    world: World
    telegram: FakeTelegram
    slack: FakeSlack
    token: str
    deployments: dict[str, str]  # channel -> deployment id

    @property
    def scheduler(self) -> Any:
        return self.world.scheduler

    async def says(self, channel: str, conversation: str, user: str, text: str = "hi") -> None:
        thread = {"telegram": conversation, "slack": conversation}.get(channel)
        address = Address(
            channel=channel,
            deployment_id=self.deployments[channel],
            conversation=conversation,
            user=user,
            thread=thread,
        )
        message = IncomingMessage(address=address, text=text)
        runtime = self.world.runtime
        if channel == "web":
            await runtime.answer(message)
        else:
            assert await runtime.feed(message)
            await runtime.drain()

    async def kept(self, origin: str) -> list[str]:
        """The texts of the proactive messages of that origin kept in conversations."""
        rows = await self.world.rows("select text, parts from message where role = 'assistant'")
        return [
            text
            for text, parts in rows
            if any(part.get("origin") == origin for part in _json(parts) or [])
        ]


@pytest.fixture
async def platforms(
    db: Database, telegram: FakeTelegram, slack: FakeSlack, fake_llm: FakeLLM
) -> AsyncIterator[Platforms]:
    cipher = Cipher("a-test-secret-key-that-is-long-enough-for-fernet")
    bot_token = token(7)
    telegram.add_bot(bot_token, username="echo_bot")
    made: list[Any] = []

    def telegram_bots(runtime: Runtime) -> TelegramBots:
        bots = TelegramBots(
            runtime=runtime, cipher=cipher, api_url=telegram.base_url, public_url=None
        )
        made.append(bots)
        return bots

    def slack_channel(runtime: Runtime) -> SlackChannel:
        async def owns(team_id: int) -> bool:
            return True

        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
        channel = SlackChannel(client, bot_name=runtime.bot_name, owns=owns)
        made.append(channel)
        return channel

    world = await make_world(db)
    world.extra_channels = [telegram_bots, slack_channel, lambda _: WebChannel(None)]
    world.llm_api_base = fake_llm.base_url
    world.restart()
    deployments = {}
    async with db.write() as session:
        repo = DeploymentRepository(session)
        for channel, target, secret in (
            ("telegram", "echo_bot", cipher.encrypt(bot_token)),
            ("slack", "C0HELP", None),
            ("web", "site", None),
        ):
            created = await repo.create(
                team_id=world.team_id,
                bot_id=world.bot_id,
                channel=channel,
                env="production",
                target=target,
                credentials=secret,
            )
            deployments[channel] = created.id
    world.runtime.deployments_changed()
    yield Platforms(world, telegram, slack, bot_token, deployments)
    await world.scheduler.stop()
    await world.runtime.drain()
    for adapter in made:
        await adapter.close()


async def test_a_trigger_on_telegram_goes_to_the_chat(platforms: Platforms) -> None:
    await platforms.says("telegram", str(CHAT), "telegram:77")
    sent = await platforms.scheduler.trigger(
        bot_id=platforms.world.bot_id,
        env="production",
        channel="telegram",
        user="77",
        message="Your order shipped!",
    )
    assert (sent.user, sent.channel, sent.text) == (
        "telegram:77",
        "telegram",
        "Your order shipped!",
    )
    last = platforms.telegram.calls_to("sendMessage", token=platforms.token)[-1]
    assert str(last.body["chat_id"]) == str(CHAT) and last.body["text"] == "Your order shipped!"
    assert await platforms.kept("trigger") == ["Your order shipped!"]
    outbox = await platforms.world.rows("select status from outbox order by id desc limit 1")
    assert outbox == [("sent",)]


async def test_a_trigger_on_slack_answers_in_the_end_users_thread(platforms: Platforms) -> None:
    await platforms.says("slack", THREAD, "slack:U1")
    sent = await platforms.scheduler.trigger(
        bot_id=platforms.world.bot_id,
        env="production",
        channel="slack",
        user="slack:U1",
        message="A reminder",
    )
    assert sent.user == "slack:U1"
    post = platforms.slack.calls_to("chat.postMessage")[-1]
    assert post.body["channel"] == "C0HELP" and post.body["thread_ts"] == "1700000000.000100"
    assert post.body["text"] == "A reminder" and post.body["username"] == "echo"


async def test_a_trigger_on_the_web_is_kept_for_the_page(platforms: Platforms) -> None:
    await platforms.says("web", "session-abcdefgh", "web:session-abcd")
    before = len(platforms.world.channel.sent)
    sent = await platforms.scheduler.trigger(
        bot_id=platforms.world.bot_id,
        env="production",
        channel="web",
        user="session-abcd",
        message="Back in stock",
    )
    history = await platforms.world.rows(
        "select role, text from message where conversation_id = :c order by id",
        c=sent.conversation_id,
    )
    assert history[-1] == ("assistant", "Back in stock")
    assert len(platforms.world.channel.sent) == before
    assert await platforms.world.rows(
        "select count(*) from outbox where payload like '%Back in%'"
    ) == [(0,)]


async def test_a_prompt_is_answered_by_the_bot_and_only_the_answer_is_kept(
    platforms: Platforms, fake_llm: FakeLLM
) -> None:
    fake_llm.reset()
    await platforms.world.promote(model="openai/fake-model", prompt="You are Echo.")
    await platforms.says("web", "session-abcdefgh", "web:session-abcd", "I like tea")
    fake_llm.reply("Tea time! Fancy a cup?")
    sent = await platforms.scheduler.trigger(
        bot_id=platforms.world.bot_id,
        env="production",
        channel="web",
        user="session-abcd",
        message="prompt: invite them for a cup of what they like",
    )
    assert sent.text == "Tea time! Fancy a cup?"
    asked = fake_llm.calls[-1].messages
    assert asked[0]["content"].startswith("You are Echo.")
    assert any("I like tea" in str(m["content"]) for m in asked)  # the conversation so far
    assert "invite them" in str(asked[-1]["content"])
    texts = [text for (text,) in await platforms.world.rows("select text from message")]
    assert "Tea time! Fancy a cup?" in texts and not any("invite them" in t for t in texts)


async def test_triggers_are_refused_for_whom_the_bot_cannot_reach(platforms: Platforms) -> None:
    world = platforms.world
    await platforms.says("web", "session-abcdefgh", "web:session-abcd")

    async def trigger(**changes: Any) -> Any:
        fields = {
            "bot_id": world.bot_id,
            "env": "production",
            "channel": "telegram",
            "user": "telegram:404",
            "message": "hello",
            **changes,
        }
        return await world.scheduler.trigger(**fields)

    with pytest.raises(UnknownEndUserError, match="never talked"):
        await trigger()  # unknown user
    with pytest.raises(UnknownEndUserError):  # talked on the web, not on Telegram
        await trigger(user="session-abcd")
    with pytest.raises(NotLiveError):  # nothing in staging
        await trigger(env="staging", channel="web", user="session-abcd")
    with pytest.raises(ProactiveError):
        await trigger(channel="web", user="session-abcd", message="  ")
    await platforms.says("telegram", str(CHAT), "telegram:77")
    platforms.telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(ProactiveError, match="blocked"):
        await trigger(user="77")


async def test_a_schedule_to_a_place_is_posted_by_the_environments_that_reach_it(
    platforms: Platforms,
) -> None:
    world, scheduler = platforms.world, platforms.scheduler
    await platforms.says("telegram", str(CHAT), "telegram:77")
    assert await scheduler.problem_with(world.bot_id, "slack:C0HELP") is None
    assert await scheduler.problem_with(world.bot_id, f"telegram:{CHAT}") is None
    unbound = await scheduler.problem_with(world.bot_id, "slack:C0NEWS")
    assert unbound == "the bot has no Slack deployment in that channel: deploy it there first"
    assert "has not started the bot" in await scheduler.problem_with(world.bot_id, "telegram:999")
    assert "no web chat session" in await scheduler.problem_with(world.bot_id, "web:nosuchsession")
    async with world.db.write() as session:  # staging is on Slack too, in another channel
        await DeploymentRepository(session).create(
            team_id=world.team_id,
            bot_id=world.bot_id,
            channel="slack",
            env="staging",
            target="C0TEST",
        )
    schedules = [
        {"id": "slack-news", "cron": "0 9 * * *", "message": "News!", "to": "slack:C0HELP"},
        {"id": "tg-news", "cron": "0 9 * * *", "message": "News!", "to": f"telegram:{CHAT}"},
        {"id": "lost", "cron": "0 9 * * *", "message": "News!", "to": "telegram:999"},
    ]
    version = await world.version(schedules=schedules)  # both environments run it
    for env in ("staging", "production"):
        await world.point(env, version, at=datetime(2030, 3, 29, tzinfo=UTC))
    await scheduler.run_due(datetime(2030, 3, 30, 9, tzinfo=UTC))
    (post,) = platforms.slack.calls_to("chat.postMessage")  # once, not once per environment
    assert post.body["channel"] == "C0HELP" and not post.body.get("thread_ts")  # top-level
    assert post.body["text"] == "News!"
    (last,) = [
        call
        for call in platforms.telegram.calls_to("sendMessage", token=platforms.token)
        if call.body["text"] == "News!"
    ]
    assert str(last.body["chat_id"]) == str(CHAT)
    runs = {
        (env, run_id): (status, error) for env, run_id, _, status, *_, error in await world.runs()
    }
    assert runs["production", "slack-news"] == ("sent", None)
    assert runs["staging", "slack-news"] == (
        "skipped",
        "staging has no Slack deployment in that channel",
    )
    assert runs["production", "tg-news"] == ("sent", None)
    assert runs["staging", "tg-news"] == ("skipped", "staging has no Telegram deployment")
    status, error = runs["production", "lost"]
    assert status == "skipped" and "has not started the bot in production" in (error or "")
    listed = {(s.env, s.schedule_id): s for s in await scheduler.statuses(world.bot_id)}
    last_run = listed["production", "lost"].last_run
    assert last_run is not None and last_run.status == "skipped"

    async with world.db.write() as session:  # a bot without a Slack deployment
        repo = DeploymentRepository(session)
        for gone in (platforms.deployments["slack"],):
            found = await repo.get(gone)
            assert found is not None
            await repo.delete(found)
    problem = await scheduler.problem_with(world.bot_id, "slack:C0HELP")
    assert problem is not None and "no Slack deployment" in problem


async def test_a_conversation_a_person_of_the_team_has_gets_nothing(
    platforms: Platforms,
) -> None:
    world = platforms.world
    await platforms.says("telegram", str(CHAT), "telegram:77")
    await hand_over(world, platforms.deployments["telegram"], str(CHAT))
    before = len(platforms.telegram.calls_to("sendMessage", token=platforms.token))
    with pytest.raises(ProactiveError, match="a person of the team has this conversation now"):
        await world.scheduler.trigger(
            bot_id=world.bot_id, env="production", channel="telegram", user="77", message="Hi"
        )
    place = {"id": "tg-news", "cron": "0 9 * * *", "message": "News!", "to": f"telegram:{CHAT}"}
    await world.promote(schedules=[place], at=datetime(2030, 3, 29, tzinfo=UTC))
    await world.scheduler.run_due(datetime(2030, 3, 30, 9, tzinfo=UTC))
    assert len(platforms.telegram.calls_to("sendMessage", token=platforms.token)) == before
    assert await platforms.kept("trigger") == [] and await platforms.kept("schedule") == []
    (run,) = await world.runs()
    assert run[3:] == ("skipped", 0, 0, "a person of the team has this conversation now")
