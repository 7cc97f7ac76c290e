"""WhatsApp's webhook through the whole service: Meta's verification request, signed posts
(`X-Hub-Signature-256`), messages answered through the fake Graph API, statuses recorded."""

from __future__ import annotations

from typing import Any

import pytest

from storage import deliveries
from tests.adapters.whatsapp.conftest import (
    APP_SECRET,
    PUBLIC,
    TOKEN,
    Own,
    channel_of,
    deploy,
    post,
    trigger,
)
from tests.factories import Service
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import (
    WA_ID,
    signed_headers,
    verification_query,
    wa_status,
    wa_text,
    whatsapp_payload,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def answers(meta: FakeMeta, phone: str, count: int = 1) -> list[dict[str, Any]]:
    """What the phone number sent Alice, once `count` messages are out."""
    await meta.wait_for("messages", count, timeout_s=15)
    return meta.sent(phone, WA_ID)


async def test_a_deployment_says_what_to_paste_into_meta_and_keeps_its_secrets(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployed = await deploy(studio, meta, name=own.bot, phone=own.phone)
    deployment = deployed["id"]

    assert deployed["webhook_url"] == f"{PUBLIC}/whatsapp/{deployment}"
    assert deployed["verify_token"] == channel_of(studio).verify_token(deployment)
    phone = meta.calls_to("object")[0]
    assert (phone.path.rsplit("/", 1)[-1], phone.auth) == (own.phone, "bearer")
    assert deployed["url"] == f"https://wa.me/1555{own.phone[-7:]}"  # the number Meta shows
    shown = str(await studio.call("GET", "/api/v1/deployments"))
    shown += str(await studio.call("GET", "/api/v1/audit"))
    assert TOKEN not in shown and APP_SECRET not in shown


async def test_the_verification_request(studio: Service, meta: FakeMeta, own: Own) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    token = channel_of(studio).verify_token(deployment)
    url = f"/whatsapp/{deployment}"

    good = await studio.client.get(url, params=verification_query(token, challenge="8675309"))
    wrong = await studio.client.get(url, params=verification_query("guess"))
    mode = await studio.client.get(url, params=verification_query(token, mode="unsubscribe"))
    other = channel_of(studio).verify_token("d_other")
    unknown = await studio.client.get("/whatsapp/d_other", params=verification_query(other))

    assert (good.status_code, good.text) == (200, "8675309")
    assert good.headers["content-type"].startswith("text/plain")
    assert wrong.status_code == 403 and mode.status_code == 403
    assert unknown.status_code == 404


async def test_posts_must_be_signed_with_the_deployments_app_secret(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    first = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    other_secret = "fedcba9876543210fedcba9876543210"
    other_bot = f"{own.bot}-other"
    await deploy(studio, meta, name=other_bot, phone=own.other, app_secret=other_secret)
    payload = whatsapp_payload(wa_text("hi"), phone_number_id=own.phone)

    unsigned = await post(studio, first, payload, secret=None)
    forged = await post(studio, first, payload, secret="0" * 32)
    other = await post(studio, first, payload, secret=other_secret)
    unknown = await post(studio, "d_unknown", payload)
    web = await studio.call("POST", f"/api/v1/bots/{own.bot}/deployments", json={"channel": "web"})
    not_whatsapp = await post(studio, web["id"], payload)

    assert [r.status_code for r in (unsigned, forged, other)] == [401, 401, 401]
    assert unknown.status_code == 404 and not_whatsapp.status_code == 404
    assert (await post(studio, first, payload)).status_code == 200


async def test_a_number_of_the_same_meta_app_is_answered_from_its_own_deployment(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    """A Meta app has one webhook URL: with two numbers deployed, each number's posts come to the
    URL pasted last, signed by the app. Each is answered by its own deployment, once; a number of
    another app posted there with this app's signature is not."""
    first = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    second = (await deploy(studio, meta, name=f"{own.bot}-2", phone=own.other))["id"]
    stranger = f"{own.other}9"
    await deploy(studio, meta, name=f"{own.bot}-3", phone=stranger, app_secret="fedcba98" * 4)
    payload = whatsapp_payload(wa_text("Refunds?"), phone_number_id=own.other)
    meta.inbound(payload)

    for _ in range(2):
        assert (await post(studio, first, payload)).status_code == 200
    (answer,) = await answers(meta, own.other)
    assert (await post(studio, second, payload)).status_code == 200  # its own URL: once still
    not_its_app = whatsapp_payload(wa_text("Hi?"), phone_number_id=stranger)
    meta.inbound(not_its_app)
    assert (await post(studio, first, not_its_app)).status_code == 200
    await studio.app.state.core.runtime.drain()

    assert answer["text"] == {"body": "I can't answer that yet."}
    assert len(meta.sent(own.other, WA_ID)) == 1
    assert meta.sent(own.phone, WA_ID) == [] and meta.sent(stranger, WA_ID) == []
    stats = await studio.call("GET", f"/api/v1/bots/{own.bot}-2/stats?period=24h")
    assert stats["turns"] == 1


async def test_a_text_is_answered_once_however_often_meta_delivers_it(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    payload = whatsapp_payload(wa_text("Refunds?"), phone_number_id=own.phone)
    meta.inbound(payload)

    for _ in range(3):
        assert (await post(studio, deployment, payload)).status_code == 200
    (answer,) = await answers(meta, own.phone)
    await studio.app.state.core.runtime.drain()

    assert answer == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"body": "I can't answer that yet."},
    }
    assert len(meta.sent(own.phone, WA_ID)) == 1
    stats = await studio.call("GET", f"/api/v1/bots/{own.bot}/stats?period=24h")
    assert stats["turns"] == 1


async def test_what_cannot_be_read_is_acknowledged_and_changes_nothing(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    odd = whatsapp_payload(wa_text("hi"), phone_number_id=own.phone)
    odd["entry"][0]["changes"][0]["value"]["messages"][0]["from"] = "not a number"
    elsewhere = whatsapp_payload(wa_text("hi"), phone_number_id="999999999999999")
    bodies: list[Any] = [[1, 2], {"object": "page", "entry": []}, odd, elsewhere]

    for body in bodies:
        assert (await post(studio, deployment, body)).status_code == 200
    garbage = b"{not json"
    refused = await studio.client.post(
        f"/whatsapp/{deployment}", content=garbage, headers=signed_headers(garbage, APP_SECRET)
    )
    huge = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    too_big = await studio.client.post(
        f"/whatsapp/{deployment}", content=huge, headers=signed_headers(huge, APP_SECRET)
    )

    assert refused.status_code == 200
    assert too_big.status_code == 413
    await studio.app.state.core.runtime.drain()
    assert meta.calls_to("messages") == []


async def test_a_message_that_is_not_text_gets_the_text_only_answer(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    unsupported = wa_text("x")
    unsupported.update(type="unsupported", errors=[{"code": 131051, "title": "Unsupported"}])
    del unsupported["text"]
    reaction = wa_text("x")
    reaction.update(type="reaction", reaction={"message_id": "wamid.X", "emoji": "👍"})
    payload = whatsapp_payload(reaction, unsupported, phone_number_id=own.phone)
    meta.inbound(payload)

    assert (await post(studio, deployment, payload)).status_code == 200

    (answer,) = await answers(meta, own.phone)
    assert "only read text" in answer["text"]["body"]


async def test_statuses_are_recorded_and_one_of_no_message_sent_here_is_not(
    studio: Service, meta: FakeMeta, own: Own
) -> None:
    deployment = (await deploy(studio, meta, name=own.bot, phone=own.phone))["id"]
    payload = whatsapp_payload(wa_text("hello"), phone_number_id=own.phone)
    meta.inbound(payload)
    await post(studio, deployment, payload)
    await answers(meta, own.phone)
    runtime = studio.app.state.core.runtime
    await runtime.drain()
    (sent,) = meta.statuses(own.phone)

    async def status(wamid: str) -> str | None:
        async with runtime.db.read_conn() as conn:
            return await deliveries.status_of(conn, deployment_id=deployment, platform_id=wamid)

    assert await status(sent["id"]) == "sent"
    delivered = [wa_status(sent["id"], "read"), wa_status(sent["id"], "delivered")]
    reports = whatsapp_payload(statuses=delivered, phone_number_id=own.phone)
    assert (await post(studio, deployment, reports)).status_code == 200
    never = [wa_status("wamid.never-sent", "failed")]
    stranger = whatsapp_payload(statuses=never, phone_number_id=own.phone)
    assert (await post(studio, deployment, stranger)).status_code == 200
    odd = whatsapp_payload(statuses=[wa_status(sent["id"], "deleted")], phone_number_id=own.phone)
    assert (await post(studio, deployment, odd)).status_code == 200

    assert await status(sent["id"]) == "read"  # a later report never moves it back
    assert await status("wamid.never-sent") is None

    # Meta often takes a message outside its window, then reports it failed (#131047).
    meta.window_error = "webhook"
    meta.advance(25 * 3600)
    await trigger(studio, deployment, "late")
    failed = meta.statuses(own.phone)[-1]
    assert failed["status"] == "failed"
    report = whatsapp_payload(statuses=[failed], phone_number_id=own.phone)
    assert (await post(studio, deployment, report)).status_code == 200
    assert await status(failed["id"]) == "failed"
