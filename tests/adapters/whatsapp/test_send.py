"""What a WhatsApp deployment sends, against the fake Graph API: buttons, files, the 24-hour
window and its template, Meta's refusals and rate limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.channel import SendError
from runtime.messages import Address, Attachment, Button, OutgoingMessage
from runtime.scheduler.types import ProactiveError
from tests.adapters.meta.steps import deployments
from tests.adapters.whatsapp.conftest import (
    TEMPLATE,
    TOKEN,
    Own,
    channel_of,
    deploy,
    post,
    trigger,
)
from tests.factories import Service
from tests.fakes.meta import Answer, FakeMeta, Upload, error_body
from tests.fakes.meta_payloads import WA_ID, wa_text, whatsapp_payload
from tests.png import SIGNATURE

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOUR = 3600.0


async def talking(studio: Service, meta: FakeMeta, own: Own, **options: str) -> str:
    """A deployment Alice has just written to (and was answered by); its id."""
    deployment = str((await deploy(studio, meta, name=own.bot, phone=own.phone, **options))["id"])
    payload = whatsapp_payload(wa_text("hello", timestamp=meta.now()), phone_number_id=own.phone)
    meta.inbound(payload)
    await post(studio, deployment, payload)
    await meta.wait_for("messages", 1, timeout_s=15)
    await studio.app.state.core.runtime.drain()
    return deployment


def to_alice(deployment: str, text: str = "", **fields: Any) -> OutgoingMessage:
    address = Address(
        channel="whatsapp", deployment_id=deployment, conversation=WA_ID, user=f"whatsapp:{WA_ID}"
    )
    return OutgoingMessage(address=address, text=text, **fields)


def buttons(*labels: str) -> tuple[Button, ...]:
    return tuple(Button(label=label, action=f"pick:{n}") for n, label in enumerate(labels))


def last_sent(meta: FakeMeta, own: Own) -> dict[str, Any]:
    return meta.sent(own.phone, WA_ID)[-1]


# -- within the window ------------------------------------------------------------------------


async def test_markdown_goes_in_whatsapps_markup_and_long_text_in_pieces(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)

    receipt = await channel.send(to_alice(deployment, "**Done**: see [the docs](https://x.y/z)."))
    long = await channel.send(to_alice(deployment, ("word " * 1000 + "\n\n") * 2))

    sent = meta.sent(own.phone, WA_ID)
    assert sent[1]["text"]["body"] == "*Done*: see the docs (https://x.y/z)."
    assert receipt.platform_id == meta.statuses(own.phone)[1]["id"]
    pieces = [body["text"]["body"] for body in sent[2:]]
    assert len(pieces) == 3 and all(len(piece) <= 4096 for piece in pieces)
    assert long.platform_id == meta.statuses(own.phone)[-1]["id"]


async def test_buttons_as_reply_buttons_a_list_or_numbered_lines(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)

    await channel.send(to_alice(deployment, "Which plan?", buttons=buttons("Basic", "Pro")))
    reply = last_sent(meta, own)
    await channel.send(to_alice(deployment, "Size?", buttons=buttons(*"SMLX", "A long size label")))
    listed = last_sent(meta, own)
    await channel.send(to_alice(deployment, "Pick", buttons=buttons(*"ABCDEFGHIJK")))
    numbered = last_sent(meta, own)

    assert reply["type"] == "interactive"
    assert reply["interactive"] == {
        "type": "button",
        "body": {"text": "Which plan?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "pick:0", "title": "Basic"}},
                {"type": "reply", "reply": {"id": "pick:1", "title": "Pro"}},
            ]
        },
    }
    assert listed["interactive"]["type"] == "list"
    (section,) = listed["interactive"]["action"]["sections"]
    assert [row["id"] for row in section["rows"]] == [f"pick:{n}" for n in range(5)]
    assert section["rows"][0] == {"id": "pick:0", "title": "S"}
    assert numbered["type"] == "text"
    assert numbered["text"]["body"].startswith("Pick\n\n1. A\n2. B")
    assert numbered["text"]["body"].endswith("11. K")


async def test_files_are_uploaded_then_sent_by_id(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)
    picture = SIGNATURE + bytes(64)

    await channel.send(
        to_alice(
            deployment,
            "Your chart",
            file=Attachment(name="chart.png", data=picture, mime="image/png"),
        )
    )
    image = last_sent(meta, own)
    await channel.send(
        to_alice(deployment, file=Attachment(name="bot.yaml", content="name: x", mime="text/yaml"))
    )
    document = last_sent(meta, own)

    first, second = meta.calls_to("media")
    assert first.body["file"] == Upload("chart.png", "image/png", picture)
    assert first.body["type"] == "image/png"
    assert image == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "image",
        "image": {"id": image["image"]["id"], "caption": "Your chart"},
    }
    stored = meta.media(image["image"]["id"])
    assert stored is not None and stored.content == picture
    assert second.body["file"] == Upload("bot.yaml", "text/plain", b"name: x")
    assert document["document"]["filename"] == "bot.yaml"


async def test_files_whatsapp_does_not_take_fail_for_good(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)
    meta.media_limits["image"] = 16
    zipped = Attachment(name="logs.zip", data=b"PK\x03\x04", mime="application/zip")
    picture = Attachment(name="big.png", data=SIGNATURE + bytes(64), mime="image/png")

    with pytest.raises(SendError, match="takes no application/zip") as refused:
        await channel.send(to_alice(deployment, "logs", file=zipped))
    assert refused.value.permanent and meta.calls_to("media") == []
    with pytest.raises(SendError, match="131053") as too_big:
        await channel.send(to_alice(deployment, "big", file=picture))
    assert too_big.value.permanent
    assert len(meta.sent(own.phone, WA_ID)) == 1  # the answer to "hello" alone


# -- the 24-hour window -----------------------------------------------------------------------


async def test_outside_the_window_a_message_goes_as_the_template(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own, template=TEMPLATE)
    meta.approve_template(own.phone, TEMPLATE, "en_US", body_params=1)
    channel_of(studio).window.clock = meta.now

    await trigger(studio, deployment, "Still there?")  # within the window: as it is
    meta.advance(25 * HOUR)
    await trigger(studio, deployment, "We miss you.\n\nCome back **soon**!")

    *_, free, templated = meta.sent(own.phone, WA_ID)
    assert free["text"] == {"body": "Still there?"}
    assert templated["template"] == {
        "name": TEMPLATE,
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "We miss you. Come back *soon*!"}],
            }
        ],
    }


async def test_outside_the_window_without_a_template_it_says_how_to_set_one(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own)
    channel_of(studio).window.clock = meta.now
    meta.advance(25 * HOUR)

    with pytest.raises(ProactiveError) as failed:
        await trigger(studio, deployment, "We miss you")

    assert str(failed.value) == (
        "outside WhatsApp's 24-hour window and no template is set: "
        f"/deploy {own.bot} whatsapp {own.phone} template=NAME"
    )
    assert meta.calls_to("messages")[1:] == []  # nothing was tried


async def test_metas_re_engagement_refusal_falls_back_to_the_template(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    """The window looked open here (a message came in), but Meta never saw it: Meta refuses the
    free-form answer (#131047) and the template carries it."""
    options = {"template": f"{TEMPLATE}:pt_BR"}
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone, **options))["id"]
    meta.approve_template(own.phone, TEMPLATE, "pt_BR", body_params=1)

    await post(studio, deployment, whatsapp_payload(wa_text("Oi"), phone_number_id=own.phone))
    await meta.wait_for("messages", 2, timeout_s=15)

    refused, accepted = meta.calls_to("messages")
    assert refused.body["type"] == "text"
    (sent,) = meta.sent(own.phone, WA_ID)
    assert sent["template"]["language"] == {"code": "pt_BR"}
    assert sent["template"]["components"][0]["parameters"][0]["text"] == "I can't answer that yet."
    assert accepted.body == sent


async def test_a_template_meta_refuses_fails_with_metas_reason(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = await talking(studio, meta, own, template=TEMPLATE)
    channel_of(studio).window.clock = meta.now
    meta.advance(25 * HOUR)

    with pytest.raises(ProactiveError, match=r"refused the template follow_up: \(#132001\)"):
        await trigger(studio, deployment, "not approved")
    meta.approve_template(own.phone, TEMPLATE, "en_US", body_params=2)
    with pytest.raises(ProactiveError, match=r"#132000.*exactly one variable"):
        await trigger(studio, deployment, "two parameters expected")


# -- deploying, tokens, rate limits -----------------------------------------------------------


async def test_deploy_checks_what_was_given_and_what_meta_says(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    await studio.live_bot(own.bot)
    meta.add_phone_number(own.phone, TOKEN)
    good = {
        "channel": "whatsapp",
        "target": own.phone,
        "token": TOKEN,
        "app_secret": "0123456789abcdef0123456789abcdef",
    }

    async def attempt(**changes: str) -> tuple[int, str]:
        response = await studio.client.post(
            f"/api/v1/bots/{own.bot}/deployments", headers=studio.auth(), json={**good, **changes}
        )
        return response.status_code, response.json().get("error", "")

    not_an_id = await attempt(target="+1 555 024 2922")
    no_secret = await attempt(app_secret="")
    swapped = await attempt(token=good["app_secret"])
    bad_template = await attempt(template="Follow Up!")
    unknown_option = await attempt(language="en")
    refused = await attempt(token="EAAGrevokedOrMistypedToken1234")
    foreign = await attempt(target=own.other)

    assert not_an_id[0] == 422 and "phone-number id" in not_an_id[1]
    assert no_secret[0] == 422 and "App settings > Basic" in no_secret[1]
    assert swapped[0] == 422 and "access token" in swapped[1]
    assert bad_template[0] == 422 and "NAME:LANGUAGE" in bad_template[1]
    assert unknown_option[0] == 422
    assert refused[0] == 409 and "Meta refused the access token" in refused[1]
    assert foreign[0] == 409 and "does not let that token use" in foreign[1]
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
        await channel_of(studio).send(to_alice(deployment, "hello again"))

    assert refused.value.permanent
    for _ in range(100):
        (listed,) = await deployments(studio, own.bot)
        if listed["status"] == "broken":
            break
        await asyncio.sleep(0.02)
    assert listed["status"] == "broken"


async def test_rate_limits_are_waited_out(studio: Service, meta: FakeMeta, own: Own) -> None:
    deployment = await talking(studio, meta, own)
    channel = channel_of(studio)
    throttled = error_body(130429, "(#130429) Rate limit hit", whatsapp=True)

    def limited(wait: str) -> Answer:
        return Answer(body=throttled, status=429, headers={"Retry-After": wait})

    meta.rate_limit("messages")  # no hint: 1 s
    meta.script("messages", limited("0"))
    receipt = await channel.send(to_alice(deployment, "after two refusals"))
    meta.script("messages", limited("120"))  # too long to hold the conversation for
    with pytest.raises(SendError, match="kept rate-limiting") as gave_up:
        await channel.send(to_alice(deployment, "later"))

    assert receipt.platform_id is not None
    assert last_sent(meta, own)["text"]["body"] == "after two refusals"
    assert len(meta.calls_to("messages")) == 1 + 3 + 1
    assert not gave_up.value.permanent  # the runtime tries it again later
