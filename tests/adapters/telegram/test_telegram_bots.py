"""Generated bots on Telegram, by webhook: the real aiogram against the fake Bot API, updates
posted over real HTTP to `/telegram/bots/{deployment}` with the secret header."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.adapters.meta.steps import asked, give_privately
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import Call, FakeTelegram
from tests.fakes.telegram_payloads import message_update, photo_update, secret_headers, token

PUBLIC = "https://studio.example.com"


@pytest.fixture
async def studio(tmp_path: Path, telegram: FakeTelegram, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path,
        public_url=PUBLIC,
        telegram_api_url=telegram.base_url,
        llm_api_base=llm.base_url,
    )
    async with running_service(settings) as service:
        yield service


async def deploy(
    studio: Service, telegram: FakeTelegram, n: int = 1, *, name: str = "faq-bot", **fields: Any
) -> tuple[str, str]:
    """A live bot deployed to Telegram with a fresh token: (deployment id, token)."""
    bot_token = token(n)
    telegram.add_bot(bot_token, username=f"{name.replace('-', '_')}_{n}_bot")
    await studio.import_bot(name, **fields)
    await studio.call("POST", f"/api/v1/bots/{name}/promote", json={"to": "staging"})
    await studio.call("POST", f"/api/v1/bots/{name}/promote", json={"to": "production"})
    deployed = await studio.call(
        "POST",
        f"/api/v1/bots/{name}/deployments",
        json={"channel": "telegram", "token": bot_token},
    )
    return deployed["id"], bot_token


def secret_of(telegram: FakeTelegram, bot_token: str) -> str:
    hook = telegram.webhook(bot_token)
    assert hook is not None
    return str(hook["secret_token"])


async def send_update(
    studio: Service, deployment: str, update: dict[str, Any], secret: str
) -> httpx.Response:
    return await studio.client.post(
        f"/telegram/bots/{deployment}", json=update, headers=secret_headers(secret)
    )


async def sent(telegram: FakeTelegram, bot_token: str, count: int = 1) -> list[Call]:
    await telegram.wait_for("sendMessage", count, token=bot_token, timeout_s=15)
    return telegram.calls_to("sendMessage", token=bot_token)


async def test_deploy_sets_the_webhook_and_answers_end_users(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram, greeting="Hello! Ask me.")
    hook = telegram.webhook(bot_token)
    assert hook is not None and hook["url"] == f"{PUBLIC}/telegram/bots/{deployment}"
    commands = telegram.commands(bot_token) or []
    assert [c["command"] for c in commands] == ["start", "reset"]
    listed = await studio.call("GET", "/api/v1/deployments")
    assert listed[0]["url"] == "https://t.me/faq_bot_1_bot"
    assert bot_token not in str(listed) and bot_token not in str(
        await studio.call("GET", "/api/v1/audit")
    )

    secret = secret_of(telegram, bot_token)
    ok = await send_update(studio, deployment, message_update("/start", chat_id=42), secret)
    assert ok.status_code == 200
    (greeting,) = await sent(telegram, bot_token)
    assert greeting.body["chat_id"] in (42, "42") and greeting.body["text"] == "Hello! Ask me."
    assert greeting.body["parse_mode"] == "HTML"

    await send_update(studio, deployment, message_update("Refunds?", chat_id=42), secret)
    answer = (await sent(telegram, bot_token, 2))[-1]
    assert answer.body["text"] == "I can't answer that yet."
    stats = await studio.call("GET", "/api/v1/bots/faq-bot/stats?period=24h")
    assert stats["turns"] == 1


async def test_a_redelivered_update_answers_once(studio: Service, telegram: FakeTelegram) -> None:
    deployment, bot_token = await deploy(studio, telegram)
    secret = secret_of(telegram, bot_token)
    update = message_update("Hello?", chat_id=7)
    for _ in range(3):
        assert (await send_update(studio, deployment, update, secret)).status_code == 200
    await sent(telegram, bot_token)
    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 1


async def test_bad_secrets_unknown_deployments_and_non_text(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram)
    update = message_update("hi")
    assert (await send_update(studio, deployment, update, "wrong")).status_code == 401
    # an undeployed bot whose webhook Telegram still calls (with the secret it was given)
    gone = studio.app.state.core.adapter("telegram").webhook_secret("d_unknown")
    assert (await send_update(studio, "d_unknown", update, gone)).status_code == 404
    assert (await send_update(studio, "d_unknown", update, "x")).status_code == 401
    secret = secret_of(telegram, bot_token)
    for given, status in (("wrong", 401), (secret, 400)):  # the secret first, then the body
        garbage = await studio.client.post(
            f"/telegram/bots/{deployment}", content=b"{not json", headers=secret_headers(given)
        )
        assert garbage.status_code == status
    await send_update(studio, deployment, photo_update(chat_id=9), secret)
    (polite,) = await sent(telegram, bot_token)
    assert "only read text" in polite.body["text"]


async def test_bad_tokens_change_nothing(studio: Service, telegram: FakeTelegram) -> None:
    await deploy(studio, telegram, 1)
    await studio.import_bot("other-bot")
    for env in ("staging", "production"):
        await studio.call("POST", "/api/v1/bots/other-bot/promote", json={"to": env})

    async def attempt(body: dict[str, Any]) -> httpx.Response:
        return await studio.client.post(
            "/api/v1/bots/other-bot/deployments", headers=studio.auth(), json=body
        )

    malformed = await attempt({"channel": "telegram", "token": "not-a-token"})
    assert malformed.status_code == 422 and "@BotFather" in malformed.text
    refused = await attempt({"channel": "telegram", "token": token(99)})  # getMe says 401
    assert refused.status_code == 409 and "refused that token" in refused.text
    taken = await attempt({"channel": "telegram", "token": token(1)})
    assert taken.status_code == 409 and "already serves another deployment" in taken.text
    deployments = await studio.call("GET", "/api/v1/deployments")
    assert [d["bot"] for d in deployments] == ["faq-bot"]


async def test_without_a_public_url_bots_poll_and_lose_nothing(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    """Development mode: the project's own getUpdates loop records each batch before it
    confirms it, so updates survive a restart and none is answered twice."""
    settings = service_settings(tmp_path / "x", telegram_api_url=telegram.base_url)
    async with running_service(settings) as studio:
        deployment, bot_token = await deploy(studio, telegram, fallback="Polled answer.")
        assert telegram.webhook(bot_token) is None
        telegram.push_update(bot_token, message_update("hello", chat_id=77))
        (answer,) = await sent(telegram, bot_token)
        assert answer.body["text"] == "Polled answer."
        assert (
            await send_update(studio, deployment, message_update("x"), "any")
        ).status_code == 401
    # the restart polls again from the last confirmed offset: nothing is answered twice
    telegram.push_update(bot_token, message_update("again", chat_id=77))
    async with running_service(settings) as studio:
        await sent(telegram, bot_token, 2)
        await asyncio.sleep(0.3)
        texts = [c.body["text"] for c in telegram.calls_to("sendMessage", token=bot_token)]
        assert texts == ["Polled answer.", "Polled answer."]


async def test_long_answers_split_and_rate_limits_wait(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model="openai/fake-model")
    secret = secret_of(telegram, bot_token)
    llm.reply(("A long answer line.\n" * 600).strip())  # ~11,400 characters
    telegram.rate_limit("sendMessage", retry_after=1, token=bot_token)
    await send_update(studio, deployment, message_update("Tell me everything", chat_id=5), secret)
    calls = await sent(telegram, bot_token, 4)  # the 429, then three pieces
    pieces = [c.body["text"] for c in calls[1:]]
    assert all(len(p) <= 4096 for p in pieces) and len(pieces) == 3
    assert "".join(pieces).count("A long answer line.") == 600


async def test_a_send_beyond_the_bots_limit_waits_telegrams_retry_after(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram)
    secret = secret_of(telegram, bot_token)
    now = [0.0]
    telegram.clock = lambda: now[0]  # the fake's second ends when the test says so
    telegram.per_bot_per_s = 1
    await send_update(studio, deployment, message_update("hi", chat_id=5), secret)
    await sent(telegram, bot_token)
    await send_update(studio, deployment, message_update("hi", chat_id=6), secret)
    deadline = asyncio.get_running_loop().time() + 15
    while not telegram.throttled:  # the bot's 2nd send in that second: a 429, retry after 1
        assert asyncio.get_running_loop().time() < deadline, "no send was refused"
        await asyncio.sleep(0.01)
    now[0] += 1.0  # the second passes; the channel sends again once retry_after has passed
    first, refused, again = await sent(telegram, bot_token, 3)
    assert [c.body["chat_id"] for c in (first, refused, again)] == ["5", "6", "6"]
    assert telegram.throttled == [refused] and again.body["text"] == refused.body["text"]
    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 3


async def test_a_models_markdown_arrives_as_telegram_html(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model="openai/fake-model")
    secret = secret_of(telegram, bot_token)
    llm.reply("**Refunds** take 5 days <b>really</b>:\n\n- ask [us](https://example.com)")
    await send_update(studio, deployment, message_update("Refunds?", chat_id=9), secret)
    (answer,) = await sent(telegram, bot_token)
    assert answer.body["parse_mode"] == "HTML"
    assert answer.body["text"] == (  # and the fake, like Telegram, could parse it
        "<b>Refunds</b> take 5 days &lt;b&gt;really&lt;/b&gt;:\n\n"
        '• ask <a href="https://example.com">us</a>'
    )


async def test_html_telegram_refuses_goes_again_once_as_plain_text(
    studio: Service, telegram: FakeTelegram, llm: FakeLLM
) -> None:
    deployment, bot_token = await deploy(studio, telegram, model="openai/fake-model")
    secret = secret_of(telegram, bot_token)
    refused = 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 0'
    telegram.fail("sendMessage", 400, refused, token=bot_token)
    llm.reply("**Refunds** take 5 days & more")
    await send_update(studio, deployment, message_update("Refunds?", chat_id=9), secret)
    first, again = await sent(telegram, bot_token, 2)
    assert first.body["parse_mode"] == "HTML" and first.body["text"].startswith("<b>Refunds</b>")
    assert "parse_mode" not in again.body and again.body["text"] == "Refunds take 5 days & more"
    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 2

    telegram.fail("sendMessage", 400, refused, times=2, token=bot_token)  # plain refused too
    await send_update(studio, deployment, message_update("Again?", chat_id=9), secret)
    await sent(telegram, bot_token, 4)
    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 4  # once, not a loop


async def test_a_revoked_token_fails_for_good_and_is_counted(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram)
    secret = secret_of(telegram, bot_token)
    telegram.revoke(bot_token)
    await send_update(studio, deployment, message_update("hi"), secret)
    await telegram.wait_for("sendMessage", token=bot_token)
    await studio.app.state.core.runtime.drain()
    metrics = (await studio.client.get("/metrics")).text
    assert 'studio_sends_total{channel="telegram",outcome="failed"}' in metrics

    # The deployment is marked broken and the team's owner is told, once.
    await send_update(studio, deployment, message_update("again?"), secret)
    for _ in range(200):
        listed = await studio.call("GET", "/api/v1/deployments")
        notices = await studio.notices()
        if listed[0]["status"] == "broken" and notices:
            break
        await asyncio.sleep(0.02)
    assert listed[0]["status"] == "broken"
    await studio.app.state.core.runtime.drain()
    notices = await studio.notices()
    assert len(notices) == 1 and "stopped answering on Telegram" in notices[0]
    assert "/deploy faq-bot telegram" in notices[0] and bot_token not in notices[0]
    audit = await studio.call("GET", "/api/v1/audit")
    assert any(event["action"] == "deploy.broken" for event in audit)

    # Deployed again with the same token, once Telegram takes it again: active.
    telegram.add_bot(bot_token, username="faq_bot_1_bot")
    await studio.call(
        "POST", "/api/v1/bots/faq-bot/deployments", json={"channel": "telegram", "token": bot_token}
    )
    assert (await studio.call("GET", "/api/v1/deployments"))[0]["status"] == "active"
    telegram.revoke(bot_token)

    # A new token for the same bot (BotFather /revoke gives one) makes it active again.
    renewed = bot_token.split(":")[0] + ":AA" + "z" * 33
    telegram.add_bot(renewed, username="faq_bot_1_bot")
    await studio.call(
        "POST",
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "telegram", "token": renewed},
    )
    assert (await studio.call("GET", "/api/v1/deployments"))[0]["status"] == "active"


async def test_undeploy_deletes_the_webhook(studio: Service, telegram: FakeTelegram) -> None:
    deployment, bot_token = await deploy(studio, telegram)
    await studio.call("DELETE", f"/api/v1/deployments/{deployment}")
    assert telegram.webhook(bot_token) is None
    assert telegram.calls_to("deleteWebhook", token=bot_token)


async def test_fifty_bots_answer_their_own_users(studio: Service, telegram: FakeTelegram) -> None:
    bots = [
        await deploy(studio, telegram, n, name=f"bot-{n}", fallback=f"I am bot {n}.")
        for n in range(50)
    ]
    await asyncio.gather(
        *[
            send_update(
                studio, d, message_update("who are you?", chat_id=1000 + n), secret_of(telegram, t)
            )
            for n, (d, t) in enumerate(bots)
        ]
    )
    for n, (_, bot_token) in enumerate(bots):
        (answer,) = await sent(telegram, bot_token)
        assert answer.body["text"] == f"I am bot {n}." and int(answer.body["chat_id"]) == 1000 + n


async def test_a_new_token_for_the_same_bot_takes_over(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, old_token = await deploy(studio, telegram)
    telegram.revoke(old_token)
    new_token = old_token.split(":")[0] + ":BB" + "x" * 33  # BotFather's /revoke: same bot id
    telegram.add_bot(new_token, username="faq_bot_1_bot")
    again = await studio.call(
        "POST",
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "telegram", "token": new_token},
    )
    assert again["id"] == deployment
    secret = secret_of(telegram, new_token)
    await send_update(studio, deployment, message_update("still there?", chat_id=3), secret)
    (answer,) = await sent(telegram, new_token)
    assert answer.body["text"] == "I can't answer that yet."
    actions = [e["action"] for e in await studio.call("GET", "/api/v1/audit")]
    assert "deploy.token" in actions


async def test_groups_commands_with_the_bot_name_and_service_messages(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram, greeting="Hello group!")
    secret = secret_of(telegram, bot_token)
    joined = message_update("", chat_id=-100123, chat_type="supergroup")
    del joined["message"]["text"]
    joined["message"]["new_chat_members"] = [{"id": 5, "is_bot": False, "first_name": "Bo"}]
    await send_update(studio, deployment, joined, secret)
    start = message_update("/start@faq_bot_1_bot", chat_id=-100123, chat_type="supergroup")
    await send_update(studio, deployment, start, secret)
    (greeting,) = await sent(telegram, bot_token)
    assert greeting.body["text"] == "Hello group!"
    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage", token=bot_token)) == 1  # the join said nothing


async def test_a_deep_link_start_is_greeted(studio: Service, telegram: FakeTelegram) -> None:
    """t.me/BOT?start=PAYLOAD opens the chat with `/start PAYLOAD`: the person is greeted."""
    deployment, bot_token = await deploy(studio, telegram, greeting="Hello! Ask me.")
    secret = secret_of(telegram, bot_token)
    await send_update(studio, deployment, message_update("/start ref-42", chat_id=43), secret)
    (greeting,) = await sent(telegram, bot_token)
    assert greeting.body["text"] == "Hello! Ask me."


async def test_forum_topics_are_conversations_answered_in_their_topic(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram, description="Answers refund questions.")
    assert telegram.description(bot_token) == "Answers refund questions."
    assert telegram.description(bot_token, short=True) == "Answers refund questions."
    secret = secret_of(telegram, bot_token)
    forum = {"chat_id": -100777, "chat_type": "supergroup"}
    await send_update(
        studio, deployment, message_update("Refunds?", message_thread_id=5, **forum), secret
    )
    await send_update(
        studio, deployment, message_update("Refunds?", message_thread_id=9, **forum), secret
    )
    first, second = await sent(telegram, bot_token, 2)
    assert {str(first.body["message_thread_id"]), str(second.body["message_thread_id"])} == {
        "5",
        "9",
    }
    conversations = await studio.call("GET", "/api/v1/bots/faq-bot/conversations")
    assert len(conversations) == 2  # one per topic, not one for the whole group

    # A reply thread in a group that is not a forum is not a topic: the group's conversation.
    group = {"chat_id": -100888, "chat_type": "supergroup"}
    reply = message_update("Refunds?", message_thread_id=77, **group)
    reply["message"]["is_topic_message"] = False
    reply["message"]["chat"]["is_forum"] = False
    await send_update(studio, deployment, reply, secret)
    third = (await sent(telegram, bot_token, 3))[-1]
    assert "message_thread_id" not in third.body


async def test_the_console_deploys_to_telegram_with_the_token_in_a_hidden_field(
    studio: Service, telegram: FakeTelegram
) -> None:
    """`/deploy BOT telegram` from the web console or the terminal: the token is asked for like
    any secret a deployment needs, and never travels in a chat message."""
    bot_token = token(71)
    telegram.add_bot(bot_token, username="console_faq_71_bot")
    await studio.import_bot("console-faq")
    await studio.call("POST", "/api/v1/bots/console-faq/promote", json={"to": "staging"})
    await studio.call("POST", "/api/v1/bots/console-faq/promote", json={"to": "production"})
    text, request = asked(await studio.say("/deploy console-faq telegram"))
    assert "the bot's token from @BotFather to put *console-faq* on Telegram" in text
    assert "hidden field" in text and "t.me/newbot" not in text
    said = await give_privately(studio, request, bot_token)
    assert "t.me/console_faq_71_bot" in str(said) and bot_token not in str(said)
    assert telegram.webhook(bot_token) is not None
    again = await give_privately(studio, request, bot_token)  # the request is used up
    assert "No secret was waiting for a value" in str(again)
