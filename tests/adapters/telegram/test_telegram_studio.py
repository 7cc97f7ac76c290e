"""The Studio's own Telegram bot: the real python-telegram-bot against the fake Bot API, updates
posted over real HTTP to `/telegram/studio` (webhook) or fetched by the project's own getUpdates
loop (polling). A user builds a bot in a DM, hands over its token, and the bot answers end users
from that token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql

from adapters.telegram.pacing import ChatPacer
from adapters.telegram.studio import TelegramStudio, suggested_username
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.telegram import Call, FakeTelegram
from tests.fakes.telegram_payloads import (
    callback_update,
    document_update,
    managed_bot_update,
    message_update,
    photo_update,
    secret_headers,
    token,
)

PUBLIC = "https://studio.example.com"
BUILDER = token(500)
ALICE = 7001


async def _no_wait(seconds: float) -> None:
    return None


@pytest.fixture
async def studio(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    async with start(tmp_path, telegram, public_url=PUBLIC) as service:
        yield service


def start(tmp_path: Path, telegram: FakeTelegram, **overrides: Any) -> Any:
    settings = service_settings(
        tmp_path,
        telegram_api_url=telegram.base_url,
        telegram_builder_token=BUILDER,
        **overrides,
    )
    return running_service(settings)


async def connected(service: Service) -> TelegramStudio:
    adapter: TelegramStudio = service.app.state.core.adapter("telegram-studio")
    adapter.pacer = ChatPacer(sleep=_no_wait)  # Telegram's pacing is tested on its own
    assert await adapter.ready(10)
    return adapter


async def post(service: Service, update: dict[str, Any], secret: str | None = None) -> int:
    adapter = await connected(service)
    response = await service.client.post(
        "/telegram/studio", json=update, headers=secret_headers(secret or adapter.secret)
    )
    return response.status_code


async def said(telegram: FakeTelegram, count: int, chat: int = ALICE) -> list[Call]:
    """The Studio's messages to `chat`, once there are at least `count`."""
    deadline = time.monotonic() + 10
    while True:
        calls = [
            c
            for c in telegram.calls_to("sendMessage", token=BUILDER)
            if str(c.body["chat_id"]) == str(chat)
        ]
        if len(calls) >= count:
            return calls
        if time.monotonic() > deadline:
            raise AssertionError(f"the Studio said {len(calls)} messages to {chat}, not {count}")
        await asyncio.sleep(0.02)


async def tell(
    service: Service, telegram: FakeTelegram, text: str, *, user_id: int = ALICE
) -> Call:
    """Say `text` to the Studio in a DM; its answer."""
    before = len(await said(telegram, 0, chat=user_id))
    status = await post(service, message_update(text, chat_id=user_id, user_id=user_id))
    assert status == 200
    return (await said(telegram, before + 1, chat=user_id))[before]


async def member_of_local_team(service: Service, telegram: FakeTelegram) -> None:
    """Alice joins the local team with a code from REST, then an owner makes her admin."""
    code = (await service.call("POST", "/api/v1/invites"))["code"]
    welcome = await tell(service, telegram, f"/join {code}")
    assert "Welcome to <b>local</b>" in welcome.body["text"]
    await service.reply(f"/role telegram:{ALICE} admin")


async def admin_with_a_live_bot(service: Service, telegram: FakeTelegram) -> None:
    """Alice is an admin of the local team, whose faq-bot has a staging and a production
    version."""
    await member_of_local_team(service, telegram)
    await service.import_bot("faq-bot")
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})


async def test_start_sets_the_menu_and_the_webhook(studio: Service, telegram: FakeTelegram) -> None:
    adapter = await connected(studio)
    hook = telegram.webhook(BUILDER)
    assert hook is not None and hook["url"] == f"{PUBLIC}/telegram/studio"
    assert hook["secret_token"] == adapter.secret
    menu = [c["command"] for c in telegram.commands(BUILDER) or []]
    assert {"newbot", "bots", "deploy", "stats", "join", "help"} <= set(menu)
    assert hook["allowed_updates"] == ["message", "callback_query", "managed_bot"]
    assert await post(studio, message_update("hi"), secret="wrong") == 401
    for given, status in (("wrong", 401), (adapter.secret, 400)):  # the secret, then the body
        garbage = await studio.client.post(
            "/telegram/studio", content=b"[1]", headers=secret_headers(given)
        )
        assert garbage.status_code == status
    assert (await studio.client.get("/healthz")).status_code == 200


async def test_a_malformed_update_is_acknowledged_and_ignored(
    studio: Service, telegram: FakeTelegram
) -> None:
    """An update of the wrong shape gets the 200 that stops Telegram redelivering it, not a 500."""
    wrong_type = {"update_id": 9001, "message": 3}
    far_future = message_update("hi", update_id=9002)
    far_future["message"]["date"] = 10**20
    for update in (wrong_type, far_future):
        assert await post(studio, update) == 200
    await studio.app.state.core.runtime.drain()
    assert await said(telegram, 0) == []


async def test_strangers_get_an_explanation_and_nothing_is_kept(
    studio: Service, telegram: FakeTelegram
) -> None:
    answer = await tell(studio, telegram, "/newbot sneaky")
    assert "/join CODE" in answer.body["text"]
    wrong = await tell(studio, telegram, "/join join-not-a-code")
    assert "not valid" in wrong.body["text"]
    members = await studio.call("GET", "/api/v1/members")
    assert all(m["identity"] != f"telegram:{ALICE}" for m in members)
    assert await studio.call("GET", "/api/v1/bots") == []


async def test_open_signup_gives_a_personal_team(tmp_path: Path, telegram: FakeTelegram) -> None:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    async with start(tmp_path, telegram, public_url=PUBLIC, telegram_open_signup=True) as service:
        welcome = await tell(service, telegram, "/start")
        assert f"telegram-{ALICE}" in welcome.body["text"]
        created = await tell(service, telegram, "/newbot mine")
        assert "mine" in created.body["text"]
        assert await service.call("GET", "/api/v1/bots") == []  # not in the local team


async def test_build_confirm_and_hand_over_a_token_in_a_dm(
    studio: Service, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await member_of_local_team(studio, telegram)
    created = await tell(studio, telegram, "/newbot@chat_studio_bot faq-bot Answers questions")
    assert created.body["parse_mode"] == "HTML" and "<b>faq-bot</b>" in created.body["text"]
    await tell(studio, telegram, "set greeting Hello from Telegram!")
    await tell(studio, telegram, "/promote faq-bot")
    question = await tell(studio, telegram, "/promote faq-bot production")
    keyboard = question.body["reply_markup"]["inline_keyboard"]
    confirm = keyboard[0][0]
    assert confirm["text"] == "Confirm" and confirm["callback_data"].startswith("confirm:")

    clicked = callback_update(confirm["callback_data"], chat_id=ALICE, user_id=ALICE)
    before = len(await said(telegram, 0))
    assert await post(studio, clicked) == 200
    promoted = (await said(telegram, before + 1))[-1]
    assert "production" in promoted.body["text"]
    await telegram.wait_for("answerCallbackQuery", 1, token=BUILDER)
    assert telegram.calls_to("editMessageReplyMarkup", token=BUILDER)

    asked = await tell(studio, telegram, "/deploy faq-bot telegram")
    assert "token from @BotFather" in asked.body["text"]
    assert "t.me/newbot" not in asked.body["text"]  # @BotFather does not let it manage bots
    bot_token = token(501)
    telegram.add_bot(bot_token, username="faq_helper_bot")
    handed = message_update(bot_token, chat_id=ALICE, user_id=ALICE)
    before = len(await said(telegram, 0))
    assert await post(studio, handed) == 200
    live = (await said(telegram, before + 1))[-1]
    assert "t.me/faq_helper_bot" in live.body["text"]
    deleted = telegram.calls_to("deleteMessage", token=BUILDER)
    assert [int(c.body["message_id"]) for c in deleted] == [handed["message"]["message_id"]]
    hook = telegram.webhook(bot_token)
    assert hook is not None and hook["url"].startswith(f"{PUBLIC}/telegram/bots/")

    # The token is nowhere in clear: not in the database, the audit, the answers or the logs.
    await studio.app.state.core.runtime.drain()
    db = studio.app.state.core.db
    async with db.read() as session:
        listing = sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = (await session.exec(listing)).all()  # type: ignore[call-overload]
        assert len(tables) > 10
        for (table,) in tables:
            rows = (await session.exec(sql(f'SELECT * FROM "{table}"'))).all()  # type: ignore[call-overload]
            assert bot_token not in str(rows), table
    assert bot_token not in caplog.text
    assert all(bot_token not in str(c.body) for c in telegram.calls_to("sendMessage"))

    # An end user of the new bot gets its answer from that token.
    deployment = hook["url"].rsplit("/", 1)[-1]
    response = await studio.client.post(
        f"/telegram/bots/{deployment}",
        json=message_update("/start", chat_id=42, user_id=42),
        headers=secret_headers(hook["secret_token"]),
    )
    assert response.status_code == 200
    (greeting,) = await telegram.wait_for("sendMessage", 1, token=bot_token, timeout_s=10)
    assert greeting.body["text"] == "Hello from Telegram!"


async def test_a_token_nobody_asked_for_is_deleted_and_refused(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    stray = token(502)
    answer = await tell(studio, telegram, f"here it is {stray}")
    assert "kept nothing" in answer.body["text"] and stray not in answer.body["text"]
    assert len(telegram.calls_to("deleteMessage", token=BUILDER)) == 1
    assert await studio.call("GET", "/api/v1/deployments") == []


async def test_a_refused_token_deploys_nothing(studio: Service, telegram: FakeTelegram) -> None:
    await admin_with_a_live_bot(studio, telegram)
    await tell(studio, telegram, "/deploy faq-bot telegram")
    refused = await tell(studio, telegram, token(503))  # getMe answers 401
    assert "refused that token" in refused.body["text"]
    assert "/deploy faq-bot telegram" in refused.body["text"]
    assert await studio.call("GET", "/api/v1/deployments") == []


async def test_a_redelivered_update_is_answered_once(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    update = message_update("/bots", chat_id=ALICE, user_id=ALICE)
    for _ in range(3):
        assert await post(studio, update) == 200
    await studio.app.state.core.runtime.drain()
    answers = [c for c in await said(telegram, 1) if "bots" in c.body["text"].lower()]
    assert len(answers) == 1


async def test_long_polling_without_a_public_url(tmp_path: Path, telegram: FakeTelegram) -> None:
    telegram.add_bot(BUILDER, username="chat_studio_bot")
    async with start(tmp_path, telegram) as service:
        await connected(service)
        assert telegram.webhook(BUILDER) is None
        update = message_update("/help", chat_id=ALICE, user_id=ALICE)
        telegram.push_update(BUILDER, update)
        telegram.push_update(BUILDER, update)  # delivered twice: answered once
        (answer,) = await said(telegram, 1)
        assert "/join CODE" in answer.body["text"]
        code = (await service.call("POST", "/api/v1/invites"))["code"]
        telegram.push_update(BUILDER, message_update(f"/join {code}", chat_id=ALICE, user_id=ALICE))
        telegram.push_update(BUILDER, message_update("/help", chat_id=ALICE, user_id=ALICE))
        # the whole list is longer than one Telegram message: it comes in several, the last
        # ending with how to ask about one command
        helped = (await said(telegram, 5))[2:]
        while "/help COMMAND" not in helped[-1].body["text"]:
            helped = (await said(telegram, len(helped) + 3))[2:]
        assert len(helped) > 2 and "/newbot" in helped[0].body["text"]


async def test_unconfigured_service_has_no_studio_webhook(service: Service) -> None:
    response = await service.client.post("/telegram/studio", json={"update_id": 1})
    assert response.status_code == 404


async def test_a_document_becomes_the_bots_knowledge(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    await tell(studio, telegram, "/newbot faq-bot")
    telegram.add_file("doc-1", b"Refunds take 5 business days after we receive the item.")
    before = len(await said(telegram, 0))
    shared = document_update(
        "refunds.txt", file_id="doc-1", file_size=57, chat_id=ALICE, user_id=ALICE
    )
    assert await post(studio, shared) == 200
    added = (await said(telegram, before + 1))[-1]
    assert "Added refunds.txt in <b>faq-bot</b>" in added.body["text"]
    assert telegram.calls_to("getFile", token=BUILDER)

    huge = document_update(
        "huge.pdf", file_id="doc-2", file_size=25 * 1024 * 1024, chat_id=ALICE, user_id=ALICE
    )
    before = len(await said(telegram, 0))
    assert await post(studio, huge) == 200
    refused = (await said(telegram, before + 1))[-1]
    assert "the limit is 20 MB" in refused.body["text"]
    assert len(telegram.calls_to("getFile", token=BUILDER)) == 1  # never downloaded


class _Unrecordable:
    """A runtime whose inbox cannot be written (a database that is down)."""

    async def feed(self, message: object) -> bool:
        raise RuntimeError("the database is down")


async def test_an_update_that_cannot_be_recorded_is_not_acknowledged(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    adapter = await connected(studio)
    adapter.runtime = _Unrecordable()  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="database is down"):  # no 200: Telegram retries
        await post(studio, message_update("/bots", chat_id=ALICE, user_id=ALICE))


async def test_join_moves_a_telegram_member_between_teams(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    await tell(studio, telegram, "/newbot local-bot")
    ops = studio.app.state.core.ops
    acme = await ops.create_team("acme")
    acme_owner = await ops.authenticate(acme.key)
    code = await studio.app.state.core.studio.members.create_invite(acme_owner)
    joined = await tell(studio, telegram, f"/join {code}")
    assert "Welcome to <b>acme</b>" in joined.body["text"]
    assert "no bots" in (await tell(studio, telegram, "/bots")).body["text"].lower()
    back = (await studio.call("POST", "/api/v1/invites"))["code"]  # a local code: back home
    assert "already" in (await tell(studio, telegram, f"/join {back}")).body["text"]
    assert "local-bot" in (await tell(studio, telegram, "/bots")).body["text"]


async def test_a_token_in_a_caption_answers_the_request_for_it(
    studio: Service, telegram: FakeTelegram
) -> None:
    await admin_with_a_live_bot(studio, telegram)
    await tell(studio, telegram, "/deploy faq-bot telegram")
    bot_token = token(509)
    telegram.add_bot(bot_token, username="faq_caption_bot")
    handed = photo_update(caption=f"here it is: {bot_token}", chat_id=ALICE, user_id=ALICE)
    before = len(await said(telegram, 0))
    assert await post(studio, handed) == 200
    assert "t.me/faq_caption_bot" in (await said(telegram, before + 1))[-1].body["text"]
    assert telegram.calls_to("deleteMessage", token=BUILDER)  # out of the chat at once


async def test_a_bot_created_through_the_studios_link_is_deployed_without_a_token(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    telegram.add_bot(BUILDER, username="chat_studio_bot", can_manage_bots=True)
    async with start(tmp_path, telegram, public_url=PUBLIC) as service:
        await admin_with_a_live_bot(service, telegram)

        asked = await tell(service, telegram, "/deploy faq-bot telegram")
        assert "https://t.me/newbot/chat_studio_bot/faq_bot?name=faq-bot" in asked.body["text"]
        created = telegram.add_managed_bot(BUILDER, token(504), username="faq_helper_2_bot")
        update = managed_bot_update(created, user_id=ALICE)
        before = len(await said(telegram, 0))
        assert await post(service, update) == 200
        live = (await said(telegram, before + 1))[-1]
        assert "t.me/faq_helper_2_bot" in live.body["text"]
        (fetched,) = telegram.calls_to("getManagedBotToken", token=BUILDER)
        assert int(fetched.body["user_id"]) == created["id"]
        hook = telegram.webhook(token(504))
        assert hook is not None and hook["url"].startswith(f"{PUBLIC}/telegram/bots/")
        assert await post(service, update) == 200  # redelivered: deployed once
        await service.app.state.core.runtime.drain()
        deployments = await service.call("GET", "/api/v1/deployments")
        assert [(d["channel"], d["env"]) for d in deployments] == [("telegram", "production")]
        assert all(token(504) not in str(c.body) for c in telegram.calls_to("sendMessage"))

        # Its token is replaced in Telegram: the deployment takes the new one.
        replaced = f"{created['id']}:{token(507).partition(':')[2]}"
        telegram.revoke(token(504))
        telegram.add_managed_bot(BUILDER, replaced, username="faq_helper_2_bot")
        before = len(await said(telegram, 0))
        assert await post(service, managed_bot_update(created, user_id=ALICE)) == 200
        renewed = (await said(telegram, before + 1))[-1]
        assert "has a new token" in renewed.body["text"]
        hook = telegram.webhook(replaced)
        assert hook is not None and hook["url"].startswith(f"{PUBLIC}/telegram/bots/")
        assert len(await service.call("GET", "/api/v1/deployments")) == 1

        # Nothing was waiting for this one: it is not deployed, and the member is told why.
        other = telegram.add_managed_bot(BUILDER, token(505), username="other_helper_bot")
        before = len(await said(telegram, 0))
        assert await post(service, managed_bot_update(other, user_id=ALICE)) == 200
        unasked = (await said(telegram, before + 1))[-1]
        assert "no deployment was waiting" in unasked.body["text"]
        assert telegram.webhook(token(505)) is None

        # A managed bot while a team secret's value is asked for is not that value.
        await tell(service, telegram, "/secret set relay-auth")
        third = telegram.add_managed_bot(BUILDER, token(508), username="third_helper_bot")
        before = len(await said(telegram, 0))
        assert await post(service, managed_bot_update(third, user_id=ALICE)) == 200
        assert "no deployment was waiting" in (await said(telegram, before + 1))[-1].body["text"]
        assert await service.call("GET", "/api/v1/secrets") == []

        # A bot this bot does not manage: Telegram refuses its token, and the member hears it.
        await tell(service, telegram, "/deploy faq-bot telegram --env staging")
        stranger = telegram.add_bot(token(506), username="not_mine_bot")
        before = len(await said(telegram, 0))
        assert await post(service, managed_bot_update(stranger, user_id=ALICE)) == 200
        refused = (await said(telegram, before + 1))[-1]
        assert "did not give me @not_mine_bot's token" in refused.body["text"]
        assert telegram.webhook(token(506)) is None


async def test_a_managed_bot_comes_by_long_polling_too(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    telegram.add_bot(BUILDER, username="chat_studio_bot", can_manage_bots=True)
    async with start(tmp_path, telegram) as service:  # no public URL: the Studio's bot polls
        await admin_with_a_live_bot(service, telegram)
        asked = await tell(service, telegram, "/deploy faq-bot telegram")
        assert "https://t.me/newbot/chat_studio_bot/" in asked.body["text"]
        created = telegram.add_managed_bot(BUILDER, token(508), username="polled_helper_bot")
        before = len(await said(telegram, 0))
        telegram.push_update(BUILDER, managed_bot_update(created, user_id=ALICE))
        live = (await said(telegram, before + 1))[-1]
        assert "t.me/polled_helper_bot" in live.body["text"]
        assert telegram.webhook(token(508)) is None  # the new bot polls as well
        (deployment,) = await service.call("GET", "/api/v1/deployments")
        assert deployment["channel"] == "telegram" and deployment["status"] == "active"


def test_suggested_usernames_follow_telegrams_rules() -> None:
    assert suggested_username("faq-bot") == "faq_bot"
    assert suggested_username("support") == "support_bot"
    assert suggested_username("42") == "my_42_bot"
    long = suggested_username("a-very-long-bot-name-for-the-refunds-team")
    assert len(long) == 32 and long.endswith("_bot")
    for name in ("faq-bot", "support", "42", "x", "été"):
        made = suggested_username(name)
        assert 5 <= len(made) <= 32 and made[0].isalpha() and made.lower().endswith("bot")
        assert all(c.isascii() and (c.isalnum() or c == "_") for c in made), made


async def test_a_command_for_the_studio_in_a_group_says_where_it_works(
    studio: Service, telegram: FakeTelegram
) -> None:
    """`/bots@chat_studio_bot` (a group's command menu adds the bot's name) is answered in the
    group with what the Studio takes there; a bare command or talk may be for anyone: silence."""
    await member_of_local_team(studio, telegram)
    group = -100777

    async def in_group(text: str) -> None:
        update = message_update(text, chat_id=group, chat_type="supergroup", user_id=ALICE)
        assert await post(studio, update) == 200

    await in_group("/newbot@Chat_Studio_Bot grp-bot")
    [told] = await said(telegram, 1, chat=group)
    assert "In a group I take only /handoff" in told.body["text"]
    assert "Send me /newbot in a private chat" in told.body["text"]
    for other in ("/bots", "/help@another_bot", "what bots do we have?"):
        await in_group(other)
    await studio.app.state.core.runtime.drain()
    await asyncio.sleep(0.3)
    assert len(await said(telegram, 1, chat=group)) == 1
    assert "grp-bot" not in str(await studio.call("GET", "/api/v1/bots"))
