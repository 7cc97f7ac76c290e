"""What a Messenger deployment sends, against the fake Graph API: plain text in pieces, quick
replies, files, typing, the 24-hour window and its message tag, Meta's refusals and rate
limits, and what a deploy checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.messenger import typing as typing_module
from runtime.channel import SendError
from runtime.messages import Attachment, Button
from tests.adapters.messenger.conftest import (
    TOKEN,
    Own,
    channel_of,
    deploy,
    post,
    to_person,
    trigger,
)
from tests.adapters.meta.steps import deployments
from tests.factories import Service
from tests.fakes.meta import FakeMeta, Upload
from tests.fakes.meta_payloads import PSID, messenger_message, messenger_payload
from tests.png import SIGNATURE

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOUR = 3600.0


async def talking(studio: Service, meta: FakeMeta, own: Own, **options: str) -> str:
    """A deployment the person has just written to (and was answered by); its id."""
    deployment = str((await deploy(studio, meta, name=own.bot, page=own.page, **options))["id"])
    hello = messenger_message("hello", timestamp=meta.now(), page_id=own.page)
    payload = messenger_payload(hello, page_id=own.page)
    meta.inbound(payload)
    await post(studio, deployment, payload)
    await meta.wait_for("messenger", 1, timeout_s=15)
    await studio.app.state.core.runtime.drain()
    channel_of(studio).window.clock = meta.now
    return deployment


def buttons(*labels: str) -> tuple[Button, ...]:
    return tuple(Button(label=label, action=f"pick:{n}") for n, label in enumerate(labels))


def last_sent(meta: FakeMeta, own: Own) -> dict[str, Any]:
    return meta.sent(own.page, PSID)[-1]


# -- within the window ------------------------------------------------------------------------


async def test_markdown_goes_as_plain_text_and_long_text_in_pieces(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)

    receipt = await channel.send(to_person(deployment, "**Done**: see [the docs](https://x.y/z)."))
    done = last_sent(meta, own)
    long = await channel.send(to_person(deployment, ("word " * 500 + "\n\n") * 2))

    assert done == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Done: see the docs (https://x.y/z)."},
    }
    assert receipt.platform_id is not None and receipt.platform_id.startswith("m_")
    assert receipt.ref == receipt.platform_id  # a reaction names it so
    pieces = [body["message"]["text"] for body in meta.sent(own.page, PSID)[2:]]
    assert len(pieces) == 3 and all(len(piece) <= 2000 for piece in pieces)
    assert long.platform_id not in (None, receipt.platform_id)


async def test_buttons_as_quick_replies_or_numbered_lines(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)

    await channel.send(to_person(deployment, "Which plan?", buttons=buttons("Basic", "Pro")))
    plain = last_sent(meta, own)
    await channel.send(to_person(deployment, buttons=buttons("Deploy it to production now")))
    cut = last_sent(meta, own)
    await channel.send(to_person(deployment, "Pick", buttons=buttons(*"ABCDEFGHIJKLMN")))
    numbered = last_sent(meta, own)

    assert plain["message"] == {
        "text": "Which plan?",
        "quick_replies": [
            {"content_type": "text", "title": "Basic", "payload": "pick:0"},
            {"content_type": "text", "title": "Pro", "payload": "pick:1"},
        ],
    }
    assert cut["message"] == {
        "text": "Choose one:",
        "quick_replies": [
            {"content_type": "text", "title": "Deploy it to produc…", "payload": "pick:0"}
        ],
    }
    assert "quick_replies" not in numbered["message"]  # 14: more than Messenger shows
    assert numbered["message"]["text"].startswith("Pick\n\n1. A\n2. B")
    assert numbered["message"]["text"].endswith("14. N")


async def test_a_file_is_uploaded_with_its_message(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)
    picture = SIGNATURE + bytes(64)

    receipt = await channel.send(
        to_person(
            deployment,
            "Your chart",
            file=Attachment(name="chart.png", data=picture, mime="image/png"),
            buttons=buttons("Thanks"),
        )
    )
    await channel.send(
        to_person(deployment, file=Attachment(name="bot.yaml", content="name: x", mime="text/yaml"))
    )

    *_, text, image, document = meta.sent(own.page, PSID)
    assert text["message"] == {"text": "Your chart"}
    assert image["message"] == {
        "attachment": {"type": "image", "payload": {"is_reusable": False}},
        "quick_replies": [{"content_type": "text", "title": "Thanks", "payload": "pick:0"}],
    }
    assert image["recipient"] == {"id": PSID} and image["messaging_type"] == "RESPONSE"
    assert image["filedata"] == Upload("chart.png", "image/png", picture)
    assert document["message"]["attachment"]["type"] == "file"
    assert document["filedata"] == Upload("bot.yaml", "text/plain", b"name: x")
    assert receipt.platform_id is not None


async def test_typing_shows_while_a_slower_answer_is_written(
    studio: Service, meta: FakeMeta, own: Own, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)
    monkeypatch.setattr(typing_module, "TYPING_AFTER_S", 0.05)
    address = to_person(deployment).address

    sink = channel.stream(address)
    assert sink is not None
    for _ in range(200):
        if meta.sender_actions(own.page, PSID):
            break
        await asyncio.sleep(0.01)
    sink("The answer ")
    await channel.send(to_person(deployment, "The answer is 42."))
    quick = channel.stream(address)  # an answer sent before "typing" would show: none
    assert quick is not None
    await channel.send(to_person(deployment, "At once."))

    assert meta.sender_actions(own.page, PSID) == ["typing_on"]
    kinds = ["typing" if "sender_action" in c.body else "text" for c in meta.calls_to("messenger")]
    assert kinds == ["text", "typing", "text", "text"]


# -- the 24-hour window -----------------------------------------------------------------------


async def test_outside_the_window_a_message_goes_with_the_tag(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await talking(studio, meta, own, tag="confirmed_event_update")

    inside = await trigger(studio, "Still there?", name=own.bot)
    meta.advance(25 * HOUR)
    outside = await trigger(studio, "Your booking moved to **Friday**.", name=own.bot)

    assert inside.status_code == 200 and outside.status_code == 200
    *_, free, tagged = meta.sent(own.page, PSID)
    assert free == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Still there?"},
    }
    assert tagged == {
        "recipient": {"id": PSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "CONFIRMED_EVENT_UPDATE",
        "message": {"text": "Your booking moved to Friday."},
    }


async def test_outside_the_window_without_a_tag_it_says_how_to_set_one(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await talking(studio, meta, own)
    meta.advance(25 * HOUR)

    refused = await trigger(studio, "We miss you", name=own.bot)

    assert refused.status_code == 502
    assert refused.json()["error"] == (
        "outside Messenger's 24-hour window and no message tag is set: "
        f"/deploy {own.bot} messenger {own.page} tag=ACCOUNT_UPDATE"
    )
    assert len(meta.calls_to("messenger")) == 1  # the answer to "hello": nothing was tried


async def test_metas_window_refusal_falls_back_to_the_tag(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    """The window looked open here (a message came in), but Meta saw the person last write two
    days ago: Meta refuses the response (#10, 2018278) and the tag carries it."""
    options = {"tag": "ACCOUNT_UPDATE"}
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page, **options))["id"]
    meta.user_wrote(own.page, PSID, at=meta.now() - 48 * HOUR)

    news = messenger_message("Any news?", page_id=own.page)
    await post(studio, deployment, messenger_payload(news, page_id=own.page))
    await meta.wait_for("messenger", 2, timeout_s=15)

    refused, accepted = meta.calls_to("messenger")
    assert refused.body["messaging_type"] == "RESPONSE"
    (sent,) = meta.sent(own.page, PSID)
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "ACCOUNT_UPDATE")
    assert accepted.body == sent


async def test_human_agent_reaches_a_person_for_seven_days_only(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await talking(studio, meta, own, tag="HUMAN_AGENT")

    meta.advance(3 * 24 * HOUR)
    within = await trigger(studio, "A person of our team here.", name=own.bot)
    meta.advance(5 * 24 * HOUR)
    late = await trigger(studio, "Still there?", name=own.bot)

    assert within.status_code == 200 and last_sent(meta, own)["tag"] == "HUMAN_AGENT"
    assert late.status_code == 502
    assert "refused the message with the tag HUMAN_AGENT: (#10)" in late.json()["error"]
    assert "within 7 days" in late.json()["error"]


# -- deploying, tokens, rate limits -----------------------------------------------------------


async def test_deploy_checks_what_was_given_and_what_meta_says(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await studio.live_bot(own.bot)
    meta.add_page(own.page, TOKEN)
    meta.add_page(own.other, "EAAGanotherPagesToken012345")
    good = {
        "channel": "messenger",
        "target": own.page,
        "token": TOKEN,
        "app_secret": "0123456789abcdef0123456789abcdef",
    }

    async def attempt(**changes: str) -> tuple[int, str]:
        response = await studio.client.post(
            f"/api/v1/bots/{own.bot}/deployments", headers=studio.auth(), json={**good, **changes}
        )
        return response.status_code, response.json().get("error", "")

    not_an_id = await attempt(target="my-page")
    no_secret = await attempt(app_secret="")
    swapped = await attempt(token=good["app_secret"])
    bad_tag = await attempt(tag="PROMOTION")
    unknown_option = await attempt(template="x")
    refused = await attempt(token="EAAGrevokedOrMistypedToken1234")
    foreign = await attempt(target=own.other)
    meta.fail("subscribed_apps", 403, code=210, message="(#210) Requires a Page access token")
    unsubscribed = await attempt()

    assert not_an_id[0] == 422 and "Page id" in not_an_id[1]
    assert no_secret[0] == 422 and "App settings > Basic" in no_secret[1]
    assert swapped[0] == 422 and "Page access token" in swapped[1]
    assert bad_tag[0] == 422 and "ACCOUNT_UPDATE" in bad_tag[1]
    assert unknown_option[0] == 422
    assert refused[0] == 409 and "Meta refused the access token" in refused[1]
    assert foreign[0] == 409 and "does not let that token use the Page" in foreign[1]
    assert unsubscribed[0] == 409 and "(#210) Requires a Page access token" in unsubscribed[1]
    assert await deployments(studio, own.bot) == []
    assert (await attempt())[0] == 201
    other_bot = f"{own.bot}-other"
    await studio.live_bot(other_bot)
    taken = await studio.client.post(
        f"/api/v1/bots/{other_bot}/deployments", headers=studio.auth(), json=good
    )
    assert taken.status_code == 409 and "already serves another" in taken.json()["error"]


async def test_a_token_meta_stops_taking_marks_the_deployment_broken(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    meta.expire_token(TOKEN)

    with pytest.raises(SendError, match="Meta refused the access token") as refused:
        await channel_of(studio).send(to_person(deployment, "hello again"))

    assert refused.value.permanent
    for _ in range(100):
        (listed,) = await deployments(studio, own.bot)
        if listed["status"] == "broken":
            break
        await asyncio.sleep(0.02)
    assert listed["status"] == "broken"
    # Undeploying still works: the failed unsubscription is logged, not raised.
    await studio.call("DELETE", f"/api/v1/deployments/{deployment}")
    assert await deployments(studio, own.bot) == []


async def test_rate_limits_are_waited_out_and_refusals_fail_for_good(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)

    meta.rate_limit("messenger")  # #613, no hint: again after 1 s
    receipt = await channel.send(to_person(deployment, "after a refusal"))
    meta.fail("messenger", 400, code=551, message="(#551) This person isn't available right now.")
    with pytest.raises(SendError, match="#551") as unavailable:
        await channel.send(to_person(deployment, "later"))

    assert receipt.platform_id is not None
    assert last_sent(meta, own)["message"]["text"] == "after a refusal"
    assert unavailable.value.permanent
