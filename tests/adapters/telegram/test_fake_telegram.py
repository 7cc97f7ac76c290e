"""The fake Telegram Bot API, driven by the real aiogram and python-telegram-bot clients, and the
update factories."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from aiogram.utils.token import validate_token

from tests.fakes.telegram import Call, FakeTelegram, Upload
from tests.fakes.telegram_payloads import (
    SECRET_HEADER,
    callback_update,
    document_update,
    message_update,
    photo_update,
    secret_headers,
    token,
)

TOKEN = token(1)
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="yes")]]
)


@asynccontextmanager
async def aiogram_bot(fake: FakeTelegram, bot_token: str = TOKEN) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    bot = Bot(bot_token, session=session)
    try:
        yield bot
    finally:
        await session.close()


async def post(fake: FakeTelegram, path: str, **form: str) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, data=form) as response,
    ):
        return response.status, await response.json()


async def test_get_me_send_edit_and_delete(telegram: FakeTelegram) -> None:
    me = telegram.add_bot(TOKEN, username="faq_helper_bot")
    assert me["id"] == 100000001
    async with aiogram_bot(telegram) as bot:
        user = await bot.get_me()
        assert (user.id, user.username, user.is_bot) == (100000001, "faq_helper_bot", True)
        assert user.can_join_groups is True

        first = await bot.send_message(chat_id=1001, text="hi", reply_markup=KEYBOARD)
        second = await bot.send_message(chat_id=1001, text="again", parse_mode="HTML")
        assert (first.chat.id, first.chat.type, first.text) == (1001, "private", "hi")
        assert first.from_user is not None and first.from_user.username == "faq_helper_bot"
        assert second.message_id == first.message_id + 1
        assert first.reply_markup is not None
        assert first.reply_markup.inline_keyboard[0][0].callback_data == "yes"

        calls = await telegram.wait_for("sendMessage", count=2, token=TOKEN)
        assert calls[0].token == TOKEN
        assert calls[0].body["chat_id"] == "1001"  # form values arrive as strings
        assert calls[0].body["reply_markup"] == {
            "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]
        }
        assert calls[1].body["parse_mode"] == "HTML"

        edited = await bot.edit_message_text("edited", chat_id=1001, message_id=first.message_id)
        assert not isinstance(edited, bool)
        assert (edited.message_id, edited.text) == (first.message_id, "edited")
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("edited", chat_id=1001, message_id=first.message_id)
        assert await bot.delete_message(chat_id=1001, message_id=second.message_id) is True
        assert await bot.send_chat_action(chat_id=1001, action="typing") is True
        assert await bot.answer_callback_query("q1", text="ok") is True

    assert [c.method for c in telegram.calls] == [
        "getMe",
        "sendMessage",
        "sendMessage",
        "editMessageText",
        "editMessageText",
        "deleteMessage",
        "sendChatAction",
        "answerCallbackQuery",
    ]


async def test_upload_is_multipart_and_can_be_downloaded(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    async with aiogram_bot(telegram) as bot:
        sent = await bot.send_document(
            chat_id=-1001234567890,
            document=BufferedInputFile(b"pdf bytes", filename="notes.pdf"),
            caption="the notes",
        )
        assert sent.chat.type == "supergroup"
        assert sent.document is not None and sent.caption == "the notes"
        call = telegram.calls_to("sendDocument")[0]
        assert call.headers["content-type"].startswith("multipart/form-data")
        assert call.body["chat_id"] == "-1001234567890"
        assert call.body["caption"] == "the notes"
        upload = call.body["document"]
        assert isinstance(upload, Upload)
        assert (upload.filename, upload.content) == ("notes.pdf", b"pdf bytes")

        file = await bot.get_file(sent.document.file_id)
        assert file.file_path is not None
        downloaded = await bot.download_file(file.file_path)
        assert downloaded is not None and downloaded.read() == b"pdf bytes"

        telegram.add_file("doc-1", b"hello", file_path="documents/hello.txt")
        assert (await bot.get_file("doc-1")).file_size == 5
        with pytest.raises(TelegramBadRequest, match="invalid file_id"):
            await bot.get_file("nope")


async def test_webhook_commands_and_descriptions(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    async with aiogram_bot(telegram) as bot:
        assert telegram.webhook(TOKEN) is None
        ok = await bot.set_webhook(
            "https://studio.test/telegram/bots/1",
            secret_token="s3cret_-X",
            allowed_updates=["message"],
        )
        assert ok is True
        hook = telegram.webhook(TOKEN)
        assert hook is not None
        assert hook["url"] == "https://studio.test/telegram/bots/1"
        assert hook["secret_token"] == "s3cret_-X"
        assert hook["allowed_updates"] == ["message"]
        info = await bot.get_webhook_info()
        assert info.url == "https://studio.test/telegram/bots/1"
        with pytest.raises(TelegramConflictError):
            await bot.get_updates(timeout=0)
        with pytest.raises(TelegramBadRequest, match="secret token"):
            await bot.set_webhook("https://studio.test/x", secret_token="not allowed!")
        assert await bot.delete_webhook() is True
        assert telegram.webhook(TOKEN) is None
        assert (await bot.get_webhook_info()).url == ""

        commands = [BotCommand(command="start", description="Say hello")]
        assert await bot.set_my_commands(commands) is True
        call = telegram.calls_to("setMyCommands")[0]
        assert call.body["commands"] == [{"command": "start", "description": "Say hello"}]
        assert telegram.commands(TOKEN) == [{"command": "start", "description": "Say hello"}]
        with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
            await bot.set_my_commands([BotCommand(command="Not-OK", description="x")])

        assert await bot.set_my_description(description="A helpful bot") is True
        assert await bot.set_my_short_description(short_description="Helps") is True
        assert telegram.description(TOKEN) == "A helpful bot"
        assert telegram.description(TOKEN, short=True) == "Helps"
        assert (await bot.get_my_short_description()).short_description == "Helps"


async def test_scripted_errors_unknown_tokens_and_methods(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    other = token(2)
    telegram.add_bot(other)
    telegram.rate_limit("sendMessage", retry_after=3)
    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", token=other)
    session = AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url))
    bot, other_bot, stranger = (Bot(t, session=session) for t in (TOKEN, other, token(3)))
    try:
        with pytest.raises(TelegramForbiddenError, match="blocked"):
            await other_bot.send_message(chat_id=1, text="x")  # its own script first
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(chat_id=1, text="x")
        assert caught.value.retry_after == 3
        assert telegram.pending == 0
        await bot.send_message(chat_id=1, text="x")  # the script is used up

        telegram.fail("sendMessage")
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(chat_id=1, text="x")

        telegram.delay("getMe", 0.2)
        started = time.monotonic()
        await bot.get_me()
        assert time.monotonic() - started >= 0.2

        telegram.revoke(other)
        with pytest.raises(TelegramUnauthorizedError):
            await other_bot.get_me()
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await session.close()  # one session serves the three bots
    assert telegram.calls_to("getMe", token=token(3))[0] == Call(token(3), "getMe", {})

    status, body = await post(telegram, f"/bot{TOKEN}/noSuchMethod", a="1")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert telegram.calls_to("noSuchMethod")[0].body == {"a": "1"}
    status, body = await post(telegram, f"/bot{token(3)}/getMe")
    assert (status, body["description"]) == (401, "Unauthorized")


async def test_pacing_answers_429_beyond_telegrams_limits(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    now = [100.0]
    telegram.clock = lambda: now[0]  # time held still: every send lands in the same second
    telegram.per_bot_per_s, telegram.per_chat_per_s = 3, 1
    async with aiogram_bot(telegram) as bot:
        for chat in (1, 2, 3):
            await bot.send_message(chat_id=chat, text="news")
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(chat_id=4, text="news")  # the bot's 4th in one second
        assert caught.value.retry_after == 1
        assert await bot.send_chat_action(chat_id=4, action="typing") is True  # not a message
        now[0] += 0.5
        with pytest.raises(TelegramRetryAfter, match="Too Many Requests: retry after 1"):
            await bot.send_message(chat_id=4, text="news")  # half a second later: still full
        now[0] += 0.5
        await bot.send_message(chat_id=4, text="news")  # the first three left the window
        with pytest.raises(TelegramRetryAfter):
            await bot.send_message(chat_id=4, text="again")  # that private chat's 2nd
        await bot.send_message(chat_id=-100123, text="group")  # groups: only the bot's limit
        now[0] += 1.0
        again = await bot.send_message(chat_id=4, text="again")
        with pytest.raises(TelegramRetryAfter):  # an edit counts as Telegram's limits count it
            await bot.edit_message_text("edited", chat_id=4, message_id=again.message_id)
    refused = telegram.throttled
    assert [(c.body["chat_id"], c.body["text"]) for c in refused] == [
        ("4", "news"),
        ("4", "news"),
        ("4", "again"),
        ("4", "edited"),
    ]
    assert len(telegram.calls_to("sendMessage")) == 9  # refused sends are recorded too

    status, body = await post(telegram, f"/bot{TOKEN}/sendMessage", chat_id="4", text="x")
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    telegram.reset()  # pacing off again, as every other test expects
    telegram.add_bot(TOKEN)
    async with aiogram_bot(telegram) as bot:
        for _ in range(5):
            await bot.send_message(chat_id=4, text="unpaced")
    assert telegram.throttled == []


async def test_text_checks_like_telegram(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    async with aiogram_bot(telegram) as bot:
        sent = await bot.send_message(
            chat_id=1, text="<b>bold</b> &amp; <a href='https://x.test'>x</a>", parse_mode="HTML"
        )
        assert sent.text == "bold & x"
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(chat_id=1, text="a <unknown> b", parse_mode="HTML")
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(chat_id=1, text="<b>open", parse_mode="HTML")
        with pytest.raises(TelegramBadRequest, match="reserved"):
            await bot.send_message(chat_id=1, text="Version 1.5 is out", parse_mode="MarkdownV2")
        escaped = await bot.send_message(chat_id=1, text="*1\\.5*", parse_mode="MarkdownV2")
        assert escaped.text == "1.5"
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(chat_id=1, text="snake_case name", parse_mode="Markdown")
        with pytest.raises(TelegramBadRequest, match="message is too long"):
            await bot.send_message(chat_id=1, text="x" * 4097)
        assert (await bot.send_message(chat_id=1, text="x" * 4096)).text == "x" * 4096
        with pytest.raises(TelegramBadRequest, match="text is empty"):
            await bot.send_message(chat_id=1, text=" ")


async def test_edits_check_the_message_like_telegram(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    other = token(2)
    telegram.add_bot(other)
    async with aiogram_bot(telegram) as bot, aiogram_bot(telegram, other) as stranger:
        plain = await bot.send_message(chat_id=7, text="bold & x")
        assert plain.entities is None
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text("bold & x", chat_id=7, message_id=plain.message_id)
        html = "<b>bold</b> &amp; <a href='https://x.test'>x</a>"
        edited = await bot.edit_message_text(
            html, chat_id=7, message_id=plain.message_id, parse_mode="HTML"
        )  # the same text, formatted: a change
        assert not isinstance(edited, bool) and edited.text == "bold & x"
        assert [(e.type, e.offset, e.length, e.url) for e in edited.entities or []] == [
            ("bold", 0, 4, None),
            ("text_link", 7, 1, "https://x.test"),
        ]
        with pytest.raises(TelegramBadRequest, match="message is not modified"):
            await bot.edit_message_text(
                html, chat_id=7, message_id=plain.message_id, parse_mode="HTML"
            )
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text("x", chat_id=8, message_id=plain.message_id)
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text("x", chat_id=7, message_id=plain.message_id + 100)
        with pytest.raises(TelegramBadRequest, match="message can't be edited"):
            await stranger.edit_message_text("mine", chat_id=7, message_id=plain.message_id)
        assert telegram.delete_message(7, plain.message_id)  # the person deletes it
        with pytest.raises(TelegramBadRequest, match="message to edit not found"):
            await bot.edit_message_text("again", chat_id=7, message_id=plain.message_id)
        assert telegram.messages(7) == []
        emoji = await bot.send_message(chat_id=7, text="<i>🙂 hi</i>", parse_mode="HTML")
        assert [(e.type, e.offset, e.length) for e in emoji.entities or []] == [("italic", 0, 5)]


async def test_get_updates_long_polls_and_honours_offset(telegram: FakeTelegram) -> None:
    telegram.add_bot(TOKEN)
    first = telegram.push_update(TOKEN, message_update("/start"))
    async with aiogram_bot(telegram) as bot:
        updates = await bot.get_updates(timeout=0)
        assert [u.update_id for u in updates] == [first["update_id"]]
        assert updates[0].message is not None and updates[0].message.text == "/start"
        # unconfirmed updates come again; an offset past them confirms them
        assert len(await bot.get_updates(timeout=0)) == 1

        later = message_update("hello")
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, telegram.push_update, TOKEN, later)
        started = time.monotonic()
        updates = await bot.get_updates(offset=first["update_id"] + 1, timeout=2)
        assert 0.05 < time.monotonic() - started < 1.5
        assert [u.update_id for u in updates] == [later["update_id"]]
        assert telegram.updates(TOKEN) == [later]

        for text in ("a", "b", "c"):
            telegram.push_update(TOKEN, message_update(text))
        updates = await bot.get_updates(offset=later["update_id"] + 1, limit=2, timeout=0)
        assert [u.message.text for u in updates if u.message] == ["a", "b"]

    started = time.monotonic()
    status, body = await post(
        telegram, f"/bot{TOKEN}/getUpdates", offset=str(10**12), timeout="0.2"
    )
    assert (status, body) == (200, {"ok": True, "result": []})
    assert time.monotonic() - started >= 0.2
    assert telegram.updates(TOKEN) == []


async def test_python_telegram_bot_form_encoded(telegram: FakeTelegram) -> None:
    ptb = pytest.importorskip("telegram")
    telegram.add_bot(TOKEN, username="faq_helper_bot")
    bot = ptb.Bot(TOKEN, base_url=f"{telegram.base_url}/bot")
    markup = ptb.InlineKeyboardMarkup([[ptb.InlineKeyboardButton("Yes", callback_data="yes")]])
    async with bot:  # initialize() calls getMe
        assert bot.username == "faq_helper_bot"
        sent = await bot.send_message(chat_id=1001, text="hi", reply_markup=markup)
        assert (sent.chat.id, sent.text) == (1001, "hi")
    assert telegram.calls[0].method == "getMe"
    call = telegram.calls_to("sendMessage")[0]
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.body["chat_id"] == "1001"
    assert call.body["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]
    }


def test_factories_build_valid_updates() -> None:
    command = message_update("/start@faq_helper_bot now")
    text = message_update("hello", chat_id=-1001234567890, chat_type="supergroup")
    topic = message_update(
        "in a topic", chat_id=-100777, chat_type="supergroup", message_thread_id=5
    )
    assert text["update_id"] > command["update_id"]
    assert text["message"]["message_id"] > command["message"]["message_id"]
    assert command["message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": len("/start@faq_helper_bot")}
    ]
    assert "entities" not in text["message"]

    parsed = [
        Update.model_validate(u)
        for u in (
            command,
            text,
            topic,
            callback_update("yes", message_id=7),
            photo_update(caption="look", file_id="ph1"),
            document_update("notes.pdf", mime_type="application/pdf"),
        )
    ]
    assert parsed[0].message is not None and parsed[0].message.chat.type == "private"
    assert parsed[1].message is not None and parsed[1].message.chat.type == "supergroup"
    assert parsed[2].message is not None and parsed[2].message.message_thread_id == 5
    query = parsed[3].callback_query
    assert query is not None and query.data == "yes" and query.message is not None
    assert query.message.message_id == 7
    photo = parsed[4].message
    assert photo is not None and photo.text is None and photo.photo is not None
    assert photo.photo[-1].file_id == "ph1" and photo.caption == "look"
    document = parsed[5].message
    assert document is not None and document.document is not None
    assert document.document.file_name == "notes.pdf"

    assert secret_headers("s3cret") == {SECRET_HEADER: "s3cret"}
    assert SECRET_HEADER == "X-Telegram-Bot-Api-Secret-Token"
    assert token(1) == token(1) != token(2)
    head, _, tail = token(7).partition(":")
    assert head == "100000007" and tail.startswith("AA") and len(tail) == 35
    assert tail.isalnum() and validate_token(token(7))


async def test_stop_answers_a_pending_long_poll() -> None:
    with FakeTelegram() as fake:
        fake.add_bot(TOKEN)
        poll = asyncio.create_task(post(fake, f"/bot{TOKEN}/getUpdates", timeout="30"))
        await fake.wait_for("getUpdates")
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await asyncio.to_thread(fake.stop)
        assert await poll == (200, {"ok": True, "result": []})
        assert time.monotonic() - started < 2
