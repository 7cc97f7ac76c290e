"""The fake Meta Graph API (WhatsApp Cloud API and Messenger Send API), driven with plain httpx,
and the webhook payload factories."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.fakes.meta import FakeMeta, Upload
from tests.fakes.meta_payloads import (
    PAGE_ID,
    PHONE_NUMBER_ID,
    PSID,
    SIGNATURE_HEADER,
    WA_ID,
    dumps,
    messenger_echo,
    messenger_message,
    messenger_payload,
    sign,
    signed_headers,
    wa_audio,
    wa_button_reply,
    wa_status,
    wa_text,
    whatsapp_payload,
)

TOKEN = "EAAGfakeWhatsAppToken"
PAGE_TOKEN = "EAAGfakePageToken"
HOUR = 3600.0


def text(body: str, to: str = WA_ID) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def template(name: str, code: str = "en_US", *params: str) -> dict[str, Any]:
    content: dict[str, Any] = {"name": name, "language": {"code": code}}
    if params:
        parameters = [{"type": "text", "text": p} for p in params]
        content["components"] = [{"type": "body", "parameters": parameters}]
    return {"messaging_product": "whatsapp", "to": WA_ID, "type": "template", "template": content}


async def post(
    meta: FakeMeta, path: str, body: dict[str, Any], token: str | None = TOKEN
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=meta.base_url) as client:
        return await client.post(path, json=body, headers=headers)


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["fbtrace_id"]
    result: dict[str, Any] = body["error"]
    return result


def whatsapp(meta: FakeMeta) -> None:
    meta.add_phone_number(PHONE_NUMBER_ID, TOKEN)


# -- WhatsApp: messages and the 24-hour window ------------------------------------------------


async def test_a_text_in_the_window_is_sent_and_recorded(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID, at=meta.now() - 23 * HOUR)

    response = await post(meta, f"/{PHONE_NUMBER_ID}/messages", text("hello", to="+" + WA_ID))

    assert response.status_code == 200
    answer = response.json()
    assert answer["messaging_product"] == "whatsapp"
    assert answer["contacts"] == [{"input": "+" + WA_ID, "wa_id": WA_ID}]
    (message,) = answer["messages"]
    assert message["id"].startswith("wamid.")
    assert meta.sent(PHONE_NUMBER_ID, WA_ID) == [text("hello", to="+" + WA_ID)]
    (call,) = meta.calls
    assert (call.method, call.path, call.kind, call.token, call.auth) == (
        "POST",
        f"/v21.0/{PHONE_NUMBER_ID}/messages",
        "messages",
        TOKEN,
        "bearer",
    )
    assert call.body["text"] == {"body": "hello"}
    assert meta.statuses(PHONE_NUMBER_ID)[0] | {"timestamp": "-"} == {
        "id": message["id"],
        "status": "sent",
        "timestamp": "-",
        "recipient_id": WA_ID,
    }


async def test_a_free_form_message_outside_the_window_is_refused(meta: FakeMeta) -> None:
    whatsapp(meta)
    never = await post(meta, f"/{PHONE_NUMBER_ID}/messages", text("hi"))
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    meta.advance(24 * HOUR + 1)
    closed = await post(meta, f"/{PHONE_NUMBER_ID}/messages", text("are you there?"))

    for response in (never, closed):
        assert response.status_code == 400
        refused = error(response)
        assert refused["code"] == 131047
        assert refused["message"] == "(#131047) Re-engagement message"
        assert refused["error_data"]["messaging_product"] == "whatsapp"
        assert "24 hours" in refused["error_data"]["details"]
    assert meta.sent(PHONE_NUMBER_ID, WA_ID) == []


async def test_outside_the_window_cloud_api_may_accept_then_report_failed(
    meta: FakeMeta,
) -> None:
    whatsapp(meta)
    meta.window_error = "webhook"

    response = await post(meta, f"/{PHONE_NUMBER_ID}/messages", text("late"))

    assert response.status_code == 200
    wamid = response.json()["messages"][0]["id"]
    (status,) = meta.statuses(PHONE_NUMBER_ID)
    assert (status["id"], status["status"], status["errors"][0]["code"]) == (
        wamid,
        "failed",
        131047,
    )
    assert meta.sent(PHONE_NUMBER_ID, WA_ID) == []
    webhook = whatsapp_payload(statuses=meta.statuses(PHONE_NUMBER_ID))
    assert webhook["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] == "failed"


async def test_an_approved_template_goes_out_of_the_window(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.approve_template(PHONE_NUMBER_ID, "follow_up", "en_US", body_params=1)

    body = template("follow_up", "en_US", "Alice")
    response = await post(meta, f"/{PHONE_NUMBER_ID}/messages", body)

    assert response.status_code == 200
    assert response.json()["messages"][0]["message_status"] == "accepted"
    (sent,) = meta.sent(PHONE_NUMBER_ID, WA_ID)
    assert sent["template"]["name"] == "follow_up"


async def test_an_unknown_template_or_wrong_parameters_are_refused(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.approve_template(PHONE_NUMBER_ID, "follow_up", "en_US", body_params=1)
    path = f"/{PHONE_NUMBER_ID}/messages"

    unknown = await post(meta, path, template("nope", "en_US", "x"))
    other_language = await post(meta, path, template("follow_up", "fr", "x"))
    no_params = await post(meta, path, template("follow_up", "en_US"))

    for response in (unknown, other_language):
        assert response.status_code == 404
        refused = error(response)
        assert refused["code"] == 132001
        assert refused["message"] == "(#132001) Template name does not exist in the translation"
    assert error(other_language)["error_data"]["details"] == (
        "template name (follow_up) does not exist in fr"
    )
    assert no_params.status_code == 400 and error(no_params)["code"] == 132000
    assert meta.sent(PHONE_NUMBER_ID, WA_ID) == []


async def test_interactive_messages_are_checked_like_meta(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    buttons = [
        {"type": "reply", "reply": {"id": f"b{i}", "title": f"Choice {i}"}} for i in range(4)
    ]
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "to": WA_ID,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "Pick one"},
            "action": {"buttons": buttons[:3]},
        },
    }

    three = await post(meta, f"/{PHONE_NUMBER_ID}/messages", body)
    body["interactive"]["action"]["buttons"] = buttons
    four = await post(meta, f"/{PHONE_NUMBER_ID}/messages", body)

    assert three.status_code == 200
    assert four.status_code == 400 and error(four)["code"] == 131009
    assert len(meta.sent(PHONE_NUMBER_ID, WA_ID)) == 1


async def test_mark_as_read(meta: FakeMeta) -> None:
    whatsapp(meta)
    inbound = meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": inbound}

    response = await post(meta, f"/{PHONE_NUMBER_ID}/messages", body)

    assert (response.status_code, response.json()) == (200, {"success": True})
    assert meta.reads(PHONE_NUMBER_ID) == [inbound]
    assert meta.calls[-1].kind == "read"


# -- tokens and ownership ---------------------------------------------------------------------


async def test_tokens_and_phone_numbers_are_checked(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.add_phone_number("200000000000001", "EAAGotherToken")
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    path = f"/{PHONE_NUMBER_ID}/messages"

    bad = await post(meta, path, text("hi"), token="EAAGnotAToken")
    missing = await post(meta, path, text("hi"), token=None)
    foreign = await post(meta, "/200000000000001/messages", text("hi"))
    async with httpx.AsyncClient(base_url=meta.base_url) as client:
        query = await client.post(path, params={"access_token": TOKEN}, json=text("by query"))
    meta.expire_token(TOKEN)
    expired = await post(meta, path, text("hi"))

    assert bad.status_code == 401
    assert error(bad)["code"] == 190
    assert error(bad)["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert "invalid_token" in bad.headers["www-authenticate"]
    assert missing.status_code == 400 and error(missing)["code"] == 104
    assert foreign.status_code == 400
    assert (error(foreign)["code"], error(foreign)["error_subcode"]) == (100, 33)
    assert "Object with ID '200000000000001' does not exist" in error(foreign)["message"]
    assert query.status_code == 200 and meta.calls[3].auth == "query"
    assert "access_token" not in meta.calls[3].body
    assert expired.status_code == 401
    assert (error(expired)["code"], error(expired)["error_subcode"]) == (190, 463)
    assert [b["text"]["body"] for b in meta.sent(PHONE_NUMBER_ID, WA_ID)] == ["by query"]


async def test_any_graph_version_is_served_and_unknown_paths_are_refused(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=meta.root_url, headers=headers) as client:
        v19 = await client.post(f"/v19.0/{PHONE_NUMBER_ID}/messages", json=text("old"))
        info = await client.get(f"/v23.0/{PHONE_NUMBER_ID}")
        unknown = await client.post(f"/v21.0/{PHONE_NUMBER_ID}/nothing", json={})

    assert v19.status_code == 200
    assert info.json()["id"] == PHONE_NUMBER_ID
    assert unknown.status_code == 400 and error(unknown)["code"] == 2500
    assert meta.base_url.endswith("/v21.0")


# -- media ------------------------------------------------------------------------------------


async def test_media_upload_limits_types_and_the_download_needs_the_token(
    meta: FakeMeta,
) -> None:
    whatsapp(meta)
    meta.add_phone_number("200000000000001", "EAAGotherToken")
    voice = b"OggS" + bytes(1000)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    form = {"messaging_product": "whatsapp", "type": "audio/ogg"}
    async with httpx.AsyncClient(base_url=meta.base_url, headers=bearer) as client:
        uploaded = await client.post(
            f"/{PHONE_NUMBER_ID}/media",
            data=form,
            files={"file": ("voice.ogg", voice, "audio/ogg")},
        )
        too_big = await client.post(
            f"/{PHONE_NUMBER_ID}/media",
            data={"messaging_product": "whatsapp", "type": "image/png"},
            files={"file": ("big.png", bytes(5 * 1024 * 1024 + 1), "image/png")},
        )
        wrong_type = await client.post(
            f"/{PHONE_NUMBER_ID}/media",
            data={"messaging_product": "whatsapp", "type": "application/zip"},
            files={"file": ("a.zip", b"PK", "application/zip")},
        )
        media_id = uploaded.json()["id"]
        info = await client.get(f"/{media_id}")
        url = info.json()["url"]
        downloaded = await client.get(url)
    async with httpx.AsyncClient() as anonymous:
        no_token = await anonymous.get(url)
        other = await anonymous.get(url, headers={"Authorization": "Bearer EAAGotherToken"})
        meta.advance(301)
        stale = await anonymous.get(url, headers=bearer)

    assert uploaded.status_code == 200 and set(uploaded.json()) == {"id"}
    stored = meta.media(media_id)
    assert stored is not None and (stored.content, stored.owner) == (voice, PHONE_NUMBER_ID)
    upload_call = meta.calls_to("media")[0]
    assert upload_call.body["file"] == Upload("voice.ogg", "audio/ogg", voice)
    assert too_big.status_code == 400
    assert error(too_big)["code"] == 131053 and "5 MB" in error(too_big)["error_data"]["details"]
    assert wrong_type.status_code == 400 and error(wrong_type)["code"] == 100
    assert info.json() == {
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": "audio/ogg",
        "sha256": stored.sha256,
        "file_size": str(len(voice)),
        "id": media_id,
    }
    assert url.startswith(meta.root_url + "/whatsapp_business/attachments/?mid=")
    assert (downloaded.status_code, downloaded.content) == (200, voice)
    assert downloaded.headers["content-type"] == "audio/ogg"
    assert no_token.status_code == 401
    assert other.status_code == 403
    assert stale.status_code == 404
    assert [c.kind for c in meta.calls_to("download")] == ["download"] * 4


async def test_inbound_media_is_fetched_by_id_and_limits_can_be_lowered(meta: FakeMeta) -> None:
    whatsapp(meta)
    media_id = meta.add_media(b"OggS voice", "audio/ogg; codecs=opus")
    meta.media_limits["audio"] = 8
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=meta.base_url, headers=bearer) as client:
        info = (await client.get(f"/{media_id}")).json()
        content = (await client.get(info["url"])).content
        small = await client.post(
            f"/{PHONE_NUMBER_ID}/media",
            data={"messaging_product": "whatsapp", "type": "audio/ogg"},
            files={"file": ("v.ogg", b"123456789", "audio/ogg")},
        )
        unknown = await client.get("/999999999")

    assert (info["mime_type"], content) == ("audio/ogg; codecs=opus", b"OggS voice")
    assert small.status_code == 400 and error(small)["code"] == 131053
    assert unknown.status_code == 400 and error(unknown)["error_subcode"] == 33
    payload = whatsapp_payload(wa_audio(media_id))
    audio = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    assert (audio["type"], audio["audio"]["id"], audio["audio"]["voice"]) == (
        "audio",
        media_id,
        True,
    )


# -- Messenger --------------------------------------------------------------------------------


async def test_messenger_response_in_the_window(meta: FakeMeta) -> None:
    meta.add_page(PAGE_ID, PAGE_TOKEN, name="Acme")
    meta.user_wrote(PAGE_ID, PSID, at=meta.now() - HOUR)
    quick = [{"content_type": "text", "title": "Yes", "payload": "YES"}]
    async with httpx.AsyncClient(base_url=meta.base_url) as client:
        # As Meta's curl example: form fields holding JSON, the token as a parameter.
        response = await client.post(
            "/me/messages",
            data={
                "recipient": json.dumps({"id": PSID}),
                "messaging_type": "RESPONSE",
                "message": json.dumps({"text": "Hello!", "quick_replies": quick}),
                "access_token": PAGE_TOKEN,
            },
        )
        typing = await client.post(
            f"/{PAGE_ID}/messages",
            json={"recipient": {"id": PSID}, "sender_action": "typing_on"},
            headers={"Authorization": f"Bearer {PAGE_TOKEN}"},
        )

    assert response.status_code == 200
    assert response.json()["recipient_id"] == PSID
    assert response.json()["message_id"].startswith("m_")
    (sent,) = meta.sent(PAGE_ID, PSID)
    assert sent["message"] == {"text": "Hello!", "quick_replies": quick}
    assert meta.calls[0].kind == "messenger" and meta.calls[0].auth == "body"
    assert typing.json() == {"recipient_id": PSID}
    assert meta.sender_actions(PAGE_ID, PSID) == ["typing_on"]


async def test_messenger_outside_the_window_needs_an_allowed_tag(meta: FakeMeta) -> None:
    meta.add_page(PAGE_ID, PAGE_TOKEN)
    meta.user_wrote(PAGE_ID, PSID)
    meta.advance(2 * 24 * HOUR)

    def send(**extra: str) -> dict[str, Any]:
        return {"recipient": {"id": PSID}, "message": {"text": "update"}, **extra}

    response = await post(meta, "/me/messages", send(messaging_type="RESPONSE"), PAGE_TOKEN)
    update = await post(meta, "/me/messages", send(messaging_type="UPDATE"), PAGE_TOKEN)
    human = await post(
        meta, "/me/messages", send(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"), PAGE_TOKEN
    )
    account = await post(
        meta, "/me/messages", send(messaging_type="MESSAGE_TAG", tag="ACCOUNT_UPDATE"), PAGE_TOKEN
    )
    made_up = await post(
        meta, "/me/messages", send(messaging_type="MESSAGE_TAG", tag="PROMO"), PAGE_TOKEN
    )
    meta.advance(6 * 24 * HOUR)
    human_late = await post(
        meta, "/me/messages", send(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT"), PAGE_TOKEN
    )
    stranger = await post(
        meta,
        "/me/messages",
        {"recipient": {"id": "999"}, "messaging_type": "RESPONSE", "message": {"text": "hi"}},
        PAGE_TOKEN,
    )

    for refused in (response, update, human_late):
        assert refused.status_code == 400
        assert (error(refused)["code"], error(refused)["error_subcode"]) == (10, 2018278)
        assert "outside of allowed window" in error(refused)["message"]
    assert human.status_code == 200 and account.status_code == 200
    assert made_up.status_code == 400 and error(made_up)["code"] == 100
    assert (error(stranger)["code"], error(stranger)["error_subcode"]) == (100, 2018001)
    assert [b["tag"] for b in meta.sent(PAGE_ID, PSID)] == ["HUMAN_AGENT", "ACCOUNT_UPDATE"]


async def test_a_token_of_no_page_cannot_use_me_messages(meta: FakeMeta) -> None:
    whatsapp(meta)
    body = {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x"}}

    response = await post(meta, "/me/messages", body, TOKEN)

    assert response.status_code == 403 and error(response)["code"] == 200


# -- scripted answers -------------------------------------------------------------------------


async def test_scripted_failures_rate_limits_and_delays(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.add_page(PAGE_ID, PAGE_TOKEN)
    meta.user_wrote(PHONE_NUMBER_ID, WA_ID)
    meta.user_wrote(PAGE_ID, PSID)
    meta.fail("messages", 500, code=131000, times=1)
    meta.rate_limit("messages")
    meta.rate_limit("messenger")
    meta.fail(f"/v21.0/{PHONE_NUMBER_ID}/media", 503, code=2)
    meta.delay("messages", 0.2)
    path = f"/{PHONE_NUMBER_ID}/messages"
    assert meta.pending == 5

    failed = await post(meta, path, text("1"))
    throttled = await post(meta, path, text("2"))
    started = asyncio.get_running_loop().time()
    delayed = await post(meta, path, text("3"))
    waited = asyncio.get_running_loop().time() - started
    normal = await post(meta, path, text("4"))
    messenger = await post(
        meta,
        "/me/messages",
        {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x"}},
        PAGE_TOKEN,
    )
    async with httpx.AsyncClient(base_url=meta.base_url) as client:
        upload = await client.post(
            path.replace("messages", "media"),
            headers={"Authorization": f"Bearer {TOKEN}"},
            data={"messaging_product": "whatsapp", "type": "audio/ogg"},
            files={"file": ("v.ogg", b"OggS", "audio/ogg")},
        )

    assert failed.status_code == 500
    assert error(failed) | {"fbtrace_id": "-"} == {
        "message": "(#131000) Something went wrong",
        "type": "OAuthException",
        "code": 131000,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "(#131000) Something went wrong",
        },
        "fbtrace_id": "-",
    }
    assert throttled.status_code == 400 and error(throttled)["code"] == 130429
    assert error(throttled)["message"] == "(#130429) Rate limit hit"
    assert delayed.status_code == 200 and waited >= 0.2
    assert normal.status_code == 200
    assert messenger.status_code == 400 and error(messenger)["code"] == 613
    assert upload.status_code == 503 and error(upload)["code"] == 2
    assert meta.pending == 0
    assert [b["text"]["body"] for b in meta.sent(PHONE_NUMBER_ID, WA_ID)] == ["3", "4"]
    calls = await meta.wait_for("messages", count=4)
    assert [c.body["text"]["body"] for c in calls] == ["1", "2", "3", "4"]


# -- payloads and signatures ------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_the_raw_body() -> None:
    # RFC 4231, test case 2 (checked with `openssl dgst -sha256 -hmac Jefe`).
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(b"what do ya want for nothing?", "Jefe") == f"sha256={expected}"
    body = dumps(whatsapp_payload(wa_text("café https://x.y/z")))
    assert b"caf\\u00e9 https:\\/\\/x.y\\/z" in body
    assert json.loads(body)["entry"][0]["changes"][0]["value"]["messages"][0]["text"] == {
        "body": "café https://x.y/z"
    }
    assert signed_headers(body, "s3cret")[SIGNATURE_HEADER] == sign(body, "s3cret")


def test_whatsapp_payloads_have_meta_shape() -> None:
    reply = wa_button_reply("yes", "Yes", timestamp=1_700_000_000)
    payload = whatsapp_payload(
        wa_text("hi"), reply, statuses=[wa_status("wamid.X", "read", timestamp=1_700_000_001)]
    )

    assert payload["object"] == "whatsapp_business_account"
    (entry,) = payload["entry"]
    (change,) = entry["changes"]
    value = change["value"]
    assert change["field"] == "messages"
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert value["contacts"] == [{"profile": {"name": "Alice"}, "wa_id": WA_ID}]
    first, second = value["messages"]
    assert (first["from"], first["type"], first["text"]) == (WA_ID, "text", {"body": "hi"})
    assert first["id"] != second["id"]
    assert second["timestamp"] == "1700000000"
    assert second["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "yes", "title": "Yes"},
    }
    assert value["statuses"] == [
        {"id": "wamid.X", "status": "read", "timestamp": "1700000001", "recipient_id": WA_ID}
    ]


def test_messenger_payloads_have_meta_shape() -> None:
    event = messenger_message("hi", quick_reply="YES", timestamp=1_700_000_000)
    payload = messenger_payload(event, messenger_echo("reply"))

    assert payload["object"] == "page"
    first, second = payload["entry"]
    assert (first["id"], first["time"]) == (PAGE_ID, 1_700_000_000_000)
    (messaging,) = first["messaging"]
    assert messaging["sender"] == {"id": PSID}
    assert messaging["recipient"] == {"id": PAGE_ID}
    assert messaging["message"]["text"] == "hi"
    assert messaging["message"]["quick_reply"] == {"payload": "YES"}
    assert messaging["message"]["mid"].startswith("m_")
    assert second["messaging"][0]["message"]["is_echo"] is True


async def test_inbound_payloads_open_the_windows(meta: FakeMeta) -> None:
    whatsapp(meta)
    meta.add_page(PAGE_ID, PAGE_TOKEN)
    now = meta.now()

    counted = meta.inbound(whatsapp_payload(wa_text("hi", timestamp=now)))
    counted += meta.inbound(
        messenger_payload(messenger_message("hi", timestamp=now), messenger_echo("ignored"))
    )
    replied = await post(meta, f"/{PHONE_NUMBER_ID}/messages", text("hello"))
    answered = await post(
        meta,
        "/me/messages",
        {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "hello"}},
        PAGE_TOKEN,
    )

    assert counted == 2
    assert meta.last_wrote(PHONE_NUMBER_ID, WA_ID) == int(now)
    assert replied.status_code == 200 and answered.status_code == 200
