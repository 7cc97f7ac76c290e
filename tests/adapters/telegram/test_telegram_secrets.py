"""`/secret set NAME` in the Studio's Telegram DM: the next message is the value, deleted from
the chat and handed over sealed before anything records it (the real python-telegram-bot
against the fake Bot API, updates posted to the webhook)."""

from __future__ import annotations

from pathlib import Path

from tests.adapters.telegram.test_telegram_studio import (
    ALICE,
    BUILDER,
    member_of_local_team,
    post,
    said,
    studio,
    tell,
)
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

__all__ = ["studio"]  # the fixture
VALUE = "sk-live-Te1egramV4lue"


async def _team(service: Service) -> int:
    return (await service.app.state.core.ops.authenticate(service.key)).team_id


async def test_the_next_message_is_the_value_deleted_and_never_echoed(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)  # an admin
    asked = await tell(studio, telegram, "/secret set acme-crm")
    assert "as your next message (within 5 minutes)" in asked.body["text"]

    handed = message_update(VALUE, chat_id=ALICE, user_id=ALICE)
    before = len(await said(telegram, 0))
    assert await post(studio, handed) == 200
    answer = (await said(telegram, before + 1))[-1]
    assert "Secret <b>acme-crm</b> saved" in answer.body["text"]
    deleted = telegram.calls_to("deleteMessage", token=BUILDER)
    assert [int(c.body["message_id"]) for c in deleted] == [handed["message"]["message_id"]]
    assert all(VALUE not in str(c.body) for c in telegram.calls)
    assert await studio.app.state.core.secrets.reveal(await _team(studio), "acme-crm") == VALUE
    listed = await studio.call("GET", "/api/v1/secrets")
    assert [(s["name"], s["updated_by"]) for s in listed] == [("acme-crm", f"telegram:{ALICE}")]

    # the request is answered once: the next message is an ordinary one again
    bots = await tell(studio, telegram, "/bots")
    assert "No bots yet" in bots.body["text"] and len(telegram.calls_to("deleteMessage")) == 1


async def test_a_bad_value_is_asked_again_and_cancel_stops(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    await tell(studio, telegram, "/secret set acme-crm")
    again = await tell(studio, telegram, "two\nlines")
    said = again.body["text"]
    assert "only visible ASCII characters" in said and "Send the value again" in said
    cancelled = await tell(studio, telegram, "/cancel")
    assert "Cancelled: no secret was saved" in cancelled.body["text"]
    assert len(telegram.calls_to("deleteMessage", token=BUILDER)) == 2
    assert await studio.call("GET", "/api/v1/secrets") == []


async def test_a_viewer_is_refused_and_nothing_waits_for_a_value(
    studio: Service, telegram: FakeTelegram
) -> None:
    code = (await studio.call("POST", "/api/v1/invites"))["code"]
    await tell(studio, telegram, f"/join {code}")  # a viewer
    refused = await tell(studio, telegram, "/secret set acme-crm")
    assert "needs the admin role" in refused.body["text"]
    ordinary = await tell(studio, telegram, "/bots")
    assert "No bots yet" in ordinary.body["text"]
    assert not telegram.calls_to("deleteMessage", token=BUILDER)


async def test_a_value_typed_after_the_name_is_deleted_and_never_stored(
    studio: Service, telegram: FakeTelegram
) -> None:
    await member_of_local_team(studio, telegram)
    typed = message_update(f"/secret set acme-crm {VALUE}", chat_id=ALICE, user_id=ALICE)
    before = len(await said(telegram, 0))
    assert await post(studio, typed) == 200
    answer = (await said(telegram, before + 1))[-1]
    assert "Never type a secret's value in a chat" in answer.body["text"]
    deleted = telegram.calls_to("deleteMessage", token=BUILDER)
    assert [int(c.body["message_id"]) for c in deleted] == [typed["message"]["message_id"]]
    database = studio.settings.database_url.split("///", 1)[1]
    for stored in Path(database).parent.glob(Path(database).name + "*"):
        assert VALUE.encode() not in stored.read_bytes()


async def test_a_value_holding_a_bot_token_is_kept_whole(
    studio: Service, telegram: FakeTelegram
) -> None:
    """Only a Telegram deployment's request takes the token out of what was sent."""
    await member_of_local_team(studio, telegram)
    await tell(studio, telegram, "/secret set relay-auth")
    value = "chat_id=42&token=123456789:" + "A" * 35
    before = len(await said(telegram, 0))
    assert await post(studio, message_update(value, chat_id=ALICE, user_id=ALICE)) == 200
    await said(telegram, before + 1)
    assert await studio.app.state.core.secrets.reveal(await _team(studio), "relay-auth") == value
