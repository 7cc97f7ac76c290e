"""End users rate a generated bot's Telegram answers with message reactions: `message_reaction`
updates posted over real HTTP to `/telegram/bots/{deployment}` with the secret header, or handed
over by getUpdates, parsed by the real aiogram; the rating lands in the `feedback` table and the
reaction is never answered nor recorded as a message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.telegram.bots import reaction_rating
from storage.tables import InboxItem
from tests.adapters.slack.test_feedback import rated
from tests.adapters.telegram.test_telegram_bots import deploy, secret_of, send_update, sent
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update, reaction_update
from tests.scenarios.test_handoff_flow import eventually

PUBLIC = "https://studio.example.com"
ANSWER = "Refunds take 5 days."
ALICE = 4201


@pytest.fixture
async def studio(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, public_url=PUBLIC, telegram_api_url=telegram.base_url)
    async with running_service(settings) as service:
        yield service


async def answered(
    studio: Service, telegram: FakeTelegram, deployment: str, bot_token: str, chat: int
) -> int:
    """The end user in `chat` asks; the message id of the bot's answer there."""
    before = len(telegram.messages(chat))
    update = message_update("Refunds?", chat_id=chat, user_id=chat)
    assert (
        await send_update(studio, deployment, update, secret_of(telegram, bot_token))
    ).is_success
    await sent(telegram, bot_token)
    answers = await eventually(lambda: telegram.messages(chat)[before:], "the bot's answer")
    return int(answers[-1]["message_id"])


async def inbox_size(studio: Service) -> int:
    async with studio.app.state.core.db.read_conn() as conn:
        return int((await conn.execute(select(func.count()).select_from(InboxItem))).scalar_one())


async def test_a_reaction_to_an_answer_rates_it(studio: Service, telegram: FakeTelegram) -> None:
    deployment, bot_token = await deploy(studio, telegram, fallback=ANSWER)
    hook = telegram.webhook(bot_token)
    assert hook is not None and hook["allowed_updates"] == ["message", "message_reaction"]
    answer = await answered(studio, telegram, deployment, bot_token, ALICE)
    secret = secret_of(telegram, bot_token)
    sends, inbox = len(telegram.calls_to("sendMessage")), await inbox_size(studio)

    async def react(*emoji: str) -> list[tuple[str, str, int, str]]:
        update = reaction_update(answer, new=list(emoji), chat_id=ALICE, user_id=ALICE)
        assert (await send_update(studio, deployment, update, secret)).status_code == 200
        return await rated(studio)

    assert await react("👍") == [(f"telegram:{ALICE}", "telegram", 1, ANSWER)]
    assert await react("🤔") == [(f"telegram:{ALICE}", "telegram", 1, ANSWER)]  # no rating
    assert await react("😢") == [(f"telegram:{ALICE}", "telegram", -1, ANSWER)]
    assert await react("💩", "🤔", "❤️") == [(f"telegram:{ALICE}", "telegram", 1, ANSWER)]
    assert await react() == []  # every reaction taken back: so is the rating
    assert await react("🔥") == [(f"telegram:{ALICE}", "telegram", 1, ANSWER)]

    await studio.app.state.core.runtime.drain()
    assert len(telegram.calls_to("sendMessage")) == sends  # a reaction is not answered
    assert await inbox_size(studio) == inbox  # nor recorded as a message


async def test_reactions_that_name_no_answer_change_nothing(
    studio: Service, telegram: FakeTelegram
) -> None:
    deployment, bot_token = await deploy(studio, telegram, fallback=ANSWER)
    other, other_token = await deploy(studio, telegram, 2, name="other-bot", fallback="Other.")
    answer = await answered(studio, telegram, deployment, bot_token, ALICE)
    secret = secret_of(telegram, bot_token)

    def thumbs_up(message_id: int = answer, chat: int = ALICE, **fields: Any) -> dict[str, Any]:
        return reaction_update(message_id, new=["👍"], chat_id=chat, user_id=ALICE, **fields)

    assert (await send_update(studio, deployment, thumbs_up(), "forged")).status_code == 401
    mine, theirs = (deployment, secret), (other, secret_of(telegram, other_token))
    for name, update, (where, with_secret) in (
        ("a message it never sent (the user's own, say)", thumbs_up(answer + 500), mine),
        ("the same message id in another chat", thumbs_up(chat=ALICE + 1), mine),
        ("an anonymous admin, on behalf of a group", thumbs_up(anonymous=True), mine),
        (
            "a custom emoji (neither up nor down)",
            reaction_update(answer, new=["custom:5368324170671202286"], chat_id=ALICE),
            mine,
        ),
        ("another bot's webhook naming this bot's answer", thumbs_up(), theirs),
    ):
        assert (await send_update(studio, where, update, with_secret)).status_code == 200, name
        assert await rated(studio) == [], name


async def test_a_polled_reaction_rates_the_answer(tmp_path: Path, telegram: FakeTelegram) -> None:
    """Without a public URL the bot's getUpdates asks for reactions too (Telegram sends them
    only to a bot that names them), and a polled reaction rates like a posted one."""
    settings = service_settings(tmp_path, telegram_api_url=telegram.base_url)
    async with running_service(settings) as studio:
        _, bot_token = await deploy(studio, telegram, fallback=ANSWER)
        telegram.push_update(bot_token, message_update("Refunds?", chat_id=ALICE, user_id=ALICE))
        await sent(telegram, bot_token)
        answer = int(telegram.messages(ALICE)[-1]["message_id"])
        telegram.push_update(
            bot_token, reaction_update(answer, new=["👎"], chat_id=ALICE, user_id=ALICE)
        )
        found = await eventually(lambda: rated(studio), "the polled rating")
        assert found == [(f"telegram:{ALICE}", "telegram", -1, ANSWER)]
        polls = telegram.calls_to("getUpdates", token=bot_token)
        assert polls[-1].body["allowed_updates"] == ["message", "message_reaction"]
        assert len(telegram.calls_to("sendMessage", token=bot_token)) == 1


@pytest.mark.parametrize(
    ("emoji", "rating"),
    [
        ([], 0),
        (["👍"], 1),
        (["❤"], 1),
        (["❤️"], 1),  # with the emoji variation selector some clients add
        (["😁"], 1),
        (["👎"], -1),
        (["🤬"], -1),
        (["👍", "👎"], -1),  # the last that rates counts
        (["👎", "🤔"], -1),
        (["🤔"], None),
        (["❤‍🔥"], None),  # heart on fire is not a heart
        ([""], None),  # a custom emoji
    ],
)
def test_which_reactions_rate(emoji: list[str], rating: int | None) -> None:
    assert reaction_rating(emoji) == rating
