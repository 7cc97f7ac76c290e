"""What people send a Messenger deployment, as the runtime records it: quick replies and
postbacks as actions, attachments as file references, reactions as ratings of answers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from adapters.messenger.payloads import Event, Reaction, incoming, rating
from storage.tables import Bot, Feedback, InboxItem, SentRef
from tests.adapters.messenger.conftest import Own, deploy, post
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import (
    PSID,
    messenger_echo,
    messenger_message,
    messenger_payload,
    messenger_postback,
)

# The tests on the module's service (the others need no event loop).
on_the_service = pytest.mark.asyncio(loop_scope="module")


async def recorded(studio: Service, deployment: str, count: int) -> list[dict[str, Any]]:
    """The inbound messages the deployment recorded, as the runtime keeps them, once they are
    answered."""
    runtime = studio.app.state.core.runtime
    await runtime.drain()
    query = select(InboxItem).where(InboxItem.deployment_id == deployment)
    async with runtime.db.read() as session:
        rows = list((await session.exec(query.order_by(col(InboxItem.id)))).all())
    assert len(rows) == count
    return [row.payload for row in rows]


def reaction(mid: str, page: str, name: str = "like", action: str = "react") -> dict[str, Any]:
    content = {"reaction": name, "emoji": "👍", "action": action, "mid": mid}
    return {"sender": {"id": PSID}, "recipient": {"id": page}, "reaction": content}


@on_the_service
async def test_quick_replies_and_postbacks_come_as_actions(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    payload = messenger_payload(
        messenger_message("Pro", quick_reply="plan:pro", page_id=own.page),
        messenger_postback("GET_STARTED", "Get Started", page_id=own.page),
        messenger_message("just words", page_id=own.page),
        page_id=own.page,
    )
    meta.inbound(payload)

    assert (await post(studio, deployment, payload)).status_code == 200

    messages = await recorded(studio, deployment, 3)
    assert [(m["text"], m["action"]) for m in messages] == [
        ("Pro", "plan:pro"),
        ("Get Started", "GET_STARTED"),
        ("just words", None),
    ]
    assert messages[0]["address"] == {
        "channel": "messenger",
        "deployment_id": deployment,
        "conversation": PSID,
        "user": f"messenger:{PSID}",
        "thread": None,
    }
    await meta.wait_for("messenger", 3, timeout_s=15)  # each answered
    # A postback redelivered is answered once too (its mid names it).
    again = messenger_payload(
        messenger_postback("GET_STARTED", message_id="m_pb1", page_id=own.page),
        page_id=own.page,
    )
    await post(studio, deployment, again)
    await post(studio, deployment, again)
    await recorded(studio, deployment, 4)


@on_the_service
async def test_attachments_come_as_file_references(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    cdn = "https://scontent.xx.fbcdn.net/v/t1.15752-9"
    attachments = [
        {"type": "image", "payload": {"url": f"{cdn}/photo_123.jpg?oh=1"}},
        {"type": "audio", "payload": {"url": "https://cdn.fbsbx.com/v/audioclip-1-2.mp4?x=1"}},
    ]
    payload = messenger_payload(
        messenger_message(attachments=attachments, page_id=own.page), page_id=own.page
    )
    meta.inbound(payload)

    assert (await post(studio, deployment, payload)).status_code == 200

    (message,) = await recorded(studio, deployment, 1)
    assert message["text"] == ""
    assert [(f["name"], f["url"], f["mime"]) for f in message["files"]] == [
        ("photo_123.jpg", f"{cdn}/photo_123.jpg?oh=1", "image/jpeg"),
        ("audioclip-1-2.mp4", "https://cdn.fbsbx.com/v/audioclip-1-2.mp4?x=1", "audio/mp4"),
    ]
    (answer,) = await meta.wait_for("messenger", 1, timeout_s=15)
    assert "only read text" in answer.body["message"]["text"]


@on_the_service
async def test_a_reaction_rates_the_answer_it_is_on(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    payload = messenger_payload(messenger_message("hello", page_id=own.page), page_id=own.page)
    meta.inbound(payload)
    await post(studio, deployment, payload)
    await meta.wait_for("messenger", 1, timeout_s=15)
    runtime = studio.app.state.core.runtime
    await runtime.drain()
    async with runtime.db.read() as session:
        query = select(SentRef).where(SentRef.deployment_id == deployment)
        (sent,) = (await session.exec(query)).all()

    async def ratings() -> list[tuple[str, int, str]]:
        query = select(Feedback).join(Bot, col(Bot.id) == Feedback.bot_id)
        async with runtime.db.read() as session:
            rows = (await session.exec(query.where(Bot.name == own.bot))).all()
        return [(row.user, row.rating, row.channel) for row in rows]

    async def react(mid: str, name: str = "like", action: str = "react") -> None:
        event = reaction(mid, own.page, name, action)
        await post(studio, deployment, messenger_payload(event, page_id=own.page))

    await react(sent.ref, "love")
    assert await ratings() == [(f"messenger:{PSID}", 1, "messenger")]
    await react(sent.ref, "angry")
    assert await ratings() == [(f"messenger:{PSID}", -1, "messenger")]
    await react(sent.ref, action="unreact")
    await react("m_not_an_answer", "love")
    assert await ratings() == []  # taken back; a reaction to no answer rates nothing
    await runtime.drain()
    assert len(meta.calls_to("messenger")) == 1  # only the answer to "hello"


def test_events_as_the_runtime_takes_them() -> None:
    text = incoming("d1", Event.model_validate(messenger_message("hi", message_id="m_A")))
    assert text is not None
    assert (text.text, text.action, text.dedupe_key) == ("hi", None, "messenger:d1:m_A")
    assert incoming("d1", Event.model_validate(messenger_echo("mine"))) is None
    place = messenger_message(
        attachments=[{"type": "location", "payload": {"coordinates": {"lat": 1.5, "long": -2}}}]
    )
    located = incoming("d1", Event.model_validate(place))
    assert located is not None and located.text == "Location: 1.500000, -2.000000"
    link = messenger_message(
        attachments=[{"type": "fallback", "payload": {"url": "https://x.y/z", "title": "X"}}]
    )
    shared = incoming("d1", Event.model_validate(link))
    assert shared is not None and (shared.text, shared.files) == ("X https://x.y/z", ())
    sticker = messenger_message(
        attachments=[{"type": "image", "payload": {"url": "https://x.y/s.png", "sticker_id": 1}}]
    )
    stuck = incoming("d1", Event.model_validate(sticker))
    assert stuck is not None and stuck.files[0].name == "sticker"
    pressed = incoming("d1", Event.model_validate(messenger_postback("MENU", "", message_id="m_P")))
    assert pressed is not None and (pressed.text, pressed.action) == ("MENU", "MENU")


def test_reactions_rate_by_their_name() -> None:
    def rated(name: str | None, action: str = "react") -> int | None:
        return rating(Reaction(action=action, mid="m_1", reaction=name))

    assert [rated(n) for n in ("like", "love", "smile")] == [1, 1, 1]
    assert [rated(n) for n in ("dislike", "angry", "sad")] == [-1, -1, -1]
    assert rated("wow") is None and rated(None) is None
    assert rated(None, "unreact") == 0
