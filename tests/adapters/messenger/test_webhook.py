"""Messenger's webhook through the whole service: Meta's verification request, signed posts
(`X-Hub-Signature-256`), messages answered through the fake Graph API once however often Meta
delivers them, deliveries and reads recorded, echoes, reactions and odd posts never answered."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from storage import deliveries
from storage.tables import Delivery
from tests.adapters.messenger.conftest import (
    APP_SECRET,
    OTHER_SECRET,
    PUBLIC,
    TOKEN,
    Own,
    channel_of,
    deploy,
    post,
)
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import (
    PSID,
    messenger_delivery,
    messenger_echo,
    messenger_message,
    messenger_payload,
    messenger_read,
    signed_headers,
    verification_query,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def answers(meta: FakeMeta, page: str, count: int = 1) -> list[dict[str, Any]]:
    """What the Page sent the person, once `count` messages are out."""
    await meta.wait_for("messenger", count, timeout_s=15)
    return meta.sent(page, PSID)


async def test_a_deployment_subscribes_the_app_and_says_what_to_paste_into_meta(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployed = await deploy(studio, meta, name=own.bot, page=own.page)
    deployment = deployed["id"]

    assert deployed["webhook_url"] == f"{PUBLIC}/messenger/{deployment}"
    assert deployed["verify_token"] == channel_of(studio).verify_token(deployment)
    assert deployed["url"] == f"https://m.me/{own.page}"
    page, subscribed = meta.calls_to("object")[0], meta.calls_to("subscribed_apps")[0]
    assert (page.path.rsplit("/", 1)[-1], page.auth, page.token) == (own.page, "bearer", TOKEN)
    assert subscribed.method == "POST" and subscribed.path.endswith(f"/{own.page}/subscribed_apps")
    fields = set(subscribed.body["subscribed_fields"].split(","))
    assert {"messages", "messaging_postbacks", "message_deliveries", "message_reads"} <= fields
    assert meta.subscribed(own.page)
    shown = str(await studio.call("GET", "/api/v1/deployments"))
    shown += str(await studio.call("GET", "/api/v1/audit"))
    assert TOKEN not in shown and APP_SECRET not in shown

    await studio.call("DELETE", f"/api/v1/deployments/{deployment}")
    assert not meta.subscribed(own.page)  # Meta posts no more of the Page's messages
    assert meta.calls_to("subscribed_apps")[-1].method == "DELETE"


async def test_the_verification_request(studio: Service, meta: FakeMeta, own: Own) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    token = channel_of(studio).verify_token(deployment)
    url = f"/messenger/{deployment}"

    good = await studio.client.get(url, params=verification_query(token, challenge="8675309"))
    wrong = await studio.client.get(url, params=verification_query("guess"))
    mode = await studio.client.get(url, params=verification_query(token, mode="unsubscribe"))
    other = channel_of(studio).verify_token("d_other")
    unknown = await studio.client.get("/messenger/d_other", params=verification_query(other))
    web = await studio.call("POST", f"/api/v1/bots/{own.bot}/deployments", json={"channel": "web"})
    web_token = channel_of(studio).verify_token(web["id"])
    not_messenger = await studio.client.get(
        f"/messenger/{web['id']}", params=verification_query(web_token)
    )

    assert (good.status_code, good.text) == (200, "8675309")
    assert good.headers["content-type"].startswith("text/plain")
    assert wrong.status_code == 403 and mode.status_code == 403
    assert unknown.status_code == 404 and not_messenger.status_code == 404


async def test_posts_must_be_signed_with_the_deployments_app_secret(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    first = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    other_bot = f"{own.bot}-other"
    await deploy(studio, meta, name=other_bot, page=own.other, app_secret=OTHER_SECRET)
    payload = messenger_payload(messenger_message("hi", page_id=own.page), page_id=own.page)

    unsigned = await post(studio, first, payload, secret=None)
    forged = await post(studio, first, payload, secret="0" * 32)
    other = await post(studio, first, payload, secret=OTHER_SECRET)
    unknown = await post(studio, "d_unknown", payload)
    web = await studio.call("POST", f"/api/v1/bots/{own.bot}/deployments", json={"channel": "web"})
    not_messenger = await post(studio, web["id"], payload)

    assert [r.status_code for r in (unsigned, forged, other)] == [401, 401, 401]
    assert unknown.status_code == 404 and not_messenger.status_code == 404
    assert (await post(studio, first, payload)).status_code == 200


async def test_a_text_is_answered_once_however_often_meta_delivers_it(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    payload = messenger_payload(messenger_message("Refunds?", page_id=own.page), page_id=own.page)
    meta.inbound(payload)

    for _ in range(3):
        assert (await post(studio, deployment, payload)).status_code == 200
    (answer,) = await answers(meta, own.page)
    await studio.app.state.core.runtime.drain()

    assert answer == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "I can't answer that yet."},
    }
    assert len(meta.sent(own.page, PSID)) == 1
    stats = await studio.call("GET", f"/api/v1/bots/{own.bot}/stats?period=24h")
    assert stats["turns"] == 1


async def test_a_page_of_the_same_meta_app_is_answered_from_its_own_deployment(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    """A Meta app has one webhook URL: with two Pages deployed, each Page's posts come to the URL
    pasted last, signed by the app. Each is answered by its own deployment, once; a Page of
    another app posted there with this app's signature is not."""
    first = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    second = (await deploy(studio, meta, name=f"{own.bot}-2", page=own.other))["id"]
    stranger = f"{own.other}9"
    await deploy(studio, meta, name=f"{own.bot}-3", page=stranger, app_secret=OTHER_SECRET)
    payload = messenger_payload(messenger_message("Refunds?", page_id=own.other), page_id=own.other)
    meta.inbound(payload)

    for _ in range(2):
        assert (await post(studio, first, payload)).status_code == 200
    (answer,) = await answers(meta, own.other)
    assert (await post(studio, second, payload)).status_code == 200  # its own URL: once still
    not_its_app = messenger_payload(messenger_message("Hi?", page_id=stranger), page_id=stranger)
    meta.inbound(not_its_app)
    assert (await post(studio, first, not_its_app)).status_code == 200
    await studio.app.state.core.runtime.drain()

    assert answer["message"] == {"text": "I can't answer that yet."}
    assert len(meta.sent(own.other, PSID)) == 1
    assert meta.sent(own.page, PSID) == [] and meta.sent(stranger, PSID) == []
    stats = await studio.call("GET", f"/api/v1/bots/{own.bot}-2/stats?period=24h")
    assert stats["turns"] == 1


async def test_what_cannot_be_read_is_acknowledged_and_changes_nothing(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    odd = messenger_payload(messenger_message("hi", page_id=own.page), page_id=own.page)
    odd["entry"][0]["messaging"][0]["sender"]["id"] = "not a psid"
    elsewhere = messenger_payload(messenger_message("hi", page_id=own.other), page_id=own.other)
    whatsapp = {"object": "whatsapp_business_account", "entry": []}
    bodies: list[Any] = [[1, 2], whatsapp, odd, elsewhere, {"object": "page", "entry": [{}]}]

    for body in bodies:
        assert (await post(studio, deployment, body)).status_code == 200
    garbage = b"{not json"
    refused = await studio.client.post(
        f"/messenger/{deployment}", content=garbage, headers=signed_headers(garbage, APP_SECRET)
    )
    huge = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    too_big = await studio.client.post(
        f"/messenger/{deployment}", content=huge, headers=signed_headers(huge, APP_SECRET)
    )

    assert refused.status_code == 200
    assert too_big.status_code == 413
    await studio.app.state.core.runtime.drain()
    assert meta.calls_to("messenger") == []


async def test_echoes_reads_and_reactions_are_never_answered(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    meta.user_wrote(own.page, PSID)
    reaction = {
        "sender": {"id": PSID},
        "recipient": {"id": own.page},
        "timestamp": int(meta.now() * 1000),
        "reaction": {"reaction": "love", "emoji": "❤", "action": "react", "mid": "m_unknown"},
    }
    payload = messenger_payload(
        messenger_echo("the Page wrote this", page_id=own.page),
        messenger_read(page_id=own.page),
        messenger_delivery(["m_never_sent"], page_id=own.page),
        reaction,
        page_id=own.page,
    )

    assert (await post(studio, deployment, payload)).status_code == 200

    await studio.app.state.core.runtime.drain()
    assert meta.calls_to("messenger") == []


async def test_deliveries_and_reads_are_recorded(studio: Service, meta: FakeMeta, own: Own) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    payload = messenger_payload(messenger_message("hello", page_id=own.page), page_id=own.page)
    meta.inbound(payload)
    await post(studio, deployment, payload)
    await answers(meta, own.page)
    runtime = studio.app.state.core.runtime
    await runtime.drain()
    async with runtime.db.read() as session:
        query = select(Delivery).where(Delivery.deployment_id == deployment)
        (sent,) = (await session.exec(query)).all()
    mid = sent.platform_id

    async def status() -> str | None:
        async with runtime.db.read_conn() as conn:
            return await deliveries.status_of(conn, deployment_id=deployment, platform_id=mid)

    assert mid.startswith("m_") and await status() == "sent"

    def report(event: dict[str, Any]) -> dict[str, Any]:
        return messenger_payload(event, page_id=own.page)

    delivered = report(messenger_delivery([mid], watermark=meta.now(), page_id=own.page))
    assert (await post(studio, deployment, delivered)).status_code == 200
    assert await status() == "delivered"
    earlier = report(messenger_read(watermark=meta.now() - 60, page_id=own.page))
    assert (await post(studio, deployment, earlier)).status_code == 200
    assert await status() == "delivered"  # read up to a minute ago: not this one yet
    read = report(messenger_read(watermark=meta.now() + 1, page_id=own.page))
    assert (await post(studio, deployment, read)).status_code == 200
    assert await status() == "read"
    again = report(messenger_delivery([mid], watermark=meta.now(), page_id=own.page))
    assert (await post(studio, deployment, again)).status_code == 200
    assert await status() == "read"  # a late report never moves it back


async def test_an_unreadable_entry_or_event_costs_the_rest_nothing(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, page=own.page))["id"]
    payload = messenger_payload(
        messenger_message("not this", page_id=own.page),
        messenger_message("Hours?", page_id=own.page),
        page_id=own.page,
    )
    payload["entry"][0]["messaging"][0]["message"] = {"text": "no mid"}
    payload["entry"].insert(0, {"messaging": "not a list"})
    meta.inbound(messenger_payload(messenger_message("Hours?", page_id=own.page), page_id=own.page))

    assert (await post(studio, deployment, payload)).status_code == 200

    (answer,) = await answers(meta, own.page)
    await studio.app.state.core.runtime.drain()
    assert answer["message"] == {"text": "I can't answer that yet."}
    assert len(meta.calls_to("messenger")) == 1
