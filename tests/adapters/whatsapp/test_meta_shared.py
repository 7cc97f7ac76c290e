"""What the Meta channels share, on its own: signatures, the verification request, credentials,
Graph's errors (read from the fake Graph API over HTTP), parsing WhatsApp's payloads."""

from __future__ import annotations

import pytest

from adapters.meta.accounts import MetaCredentials
from adapters.meta.graph import GraphClient, GraphError, failure
from adapters.meta.webhook import challenge_answer, signature_valid
from adapters.whatsapp.payloads import Message, incoming
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import (
    PHONE_NUMBER_ID,
    WA_ID,
    dumps,
    sign,
    verification_query,
    wa_audio,
    wa_text,
    whatsapp_payload,
)

SECRET = "0123456789abcdef0123456789abcdef"


def test_signatures_are_checked_on_the_raw_body() -> None:
    body = dumps(whatsapp_payload(wa_text("café https://x.y/z")))
    good = sign(body, SECRET)
    assert signature_valid(body, good, SECRET)
    assert signature_valid(body, good.upper().replace("SHA256=", "sha256="), SECRET)
    assert not signature_valid(body + b" ", good, SECRET)
    assert not signature_valid(body, good.removeprefix("sha256="), SECRET)
    assert not signature_valid(body, None, SECRET)
    assert not signature_valid(body, sign(body, "f" * 32), SECRET)


def test_the_challenge_is_echoed_for_the_right_token_only() -> None:
    assert challenge_answer(verification_query("tok", "42"), "tok") == (200, "42")
    assert challenge_answer(verification_query("bad", "42"), "tok")[0] == 403
    assert challenge_answer(verification_query("tok", "42", mode="other"), "tok")[0] == 403
    assert challenge_answer({"hub.mode": "subscribe", "hub.verify_token": "tok"}, "tok")[0] == 400
    long = verification_query("tok", "9" * 300)
    assert challenge_answer(long, "tok")[0] == 400


def test_credentials_are_one_json_string_that_never_shows_its_secrets() -> None:
    credentials = MetaCredentials("EAAtoken", SECRET, (("template", "follow_up"),))
    again = MetaCredentials.loads(credentials.dumps())
    assert again == credentials and again.option("template") == "follow_up"
    assert credentials.dumps() == MetaCredentials.loads(credentials.dumps()).dumps()
    assert "EAAtoken" not in repr(credentials) and SECRET not in repr(credentials)
    with pytest.raises(ValueError):
        MetaCredentials.loads('{"token": "x"}')


async def test_graphs_errors_are_typed(meta: FakeMeta) -> None:
    meta.add_phone_number(PHONE_NUMBER_ID, "EAAgood")
    graph = GraphClient(meta.base_url, channel="whatsapp")
    try:
        with pytest.raises(GraphError) as refused:
            await graph.call("GET", PHONE_NUMBER_ID, token="EAAunknown")
        meta.fail("object", 503, code=2)
        with pytest.raises(GraphError) as down:
            await graph.call("GET", PHONE_NUMBER_ID, token="EAAgood")
        with pytest.raises(GraphError) as missing:
            await graph.call("GET", "200000000000001", token="EAAgood")
        phone = await graph.call("GET", PHONE_NUMBER_ID, token="EAAgood")
    finally:
        await graph.close()
    unreachable = GraphClient("http://127.0.0.1:9/v21.0", channel="whatsapp")
    with pytest.raises(GraphError) as offline:
        await unreachable.call("GET", "1", token="EAAgood")
    await unreachable.close()

    assert refused.value.token_refused and refused.value.status == 401
    assert failure(refused.value, platform="WhatsApp").permanent
    assert down.value.transient and not failure(down.value, platform="WhatsApp").permanent
    assert failure(down.value, platform="WhatsApp", out=True).permanent
    assert (missing.value.code, missing.value.subcode) == (100, 33)
    assert "does not exist" in missing.value.reason and missing.value.trace
    assert phone["id"] == PHONE_NUMBER_ID
    assert offline.value.status == 0 and offline.value.transient


def test_graph_trusts_media_urls_of_meta_and_its_own_host_only() -> None:
    graph = GraphClient("http://127.0.0.1:8080/v21.0", channel="whatsapp")
    assert graph.trusts("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1")
    assert graph.trusts("http://127.0.0.1:8080/whatsapp_business/attachments/?mid=1")
    assert not graph.trusts("http://lookaside.fbsbx.com/x")
    assert not graph.trusts("https://fbsbx.com.evil.example/x")
    assert not graph.trusts("http://127.0.0.1:9999/x")


def test_whatsapp_messages_as_the_runtime_takes_them() -> None:
    text = incoming("d1", Message.model_validate(wa_text("hi", message_id="wamid.A")))
    assert text is not None
    assert (text.text, text.dedupe_key) == ("hi", "whatsapp:d1:wamid.A")
    assert (text.address.conversation, text.address.user) == (WA_ID, f"whatsapp:{WA_ID}")
    voice = incoming("d1", Message.model_validate(wa_audio("77", mime_type="audio/ogg")))
    assert voice is not None and voice.files[0].url == "media:77"
    welcome = wa_text("x")
    welcome.update(type="request_welcome")
    opened = incoming("d1", Message.model_validate(welcome))
    assert opened is not None and opened.text == "/start"
    place = wa_text("x")
    place.update(type="location", location={"latitude": 1.5, "longitude": -2, "name": "Shop"})
    located = incoming("d1", Message.model_validate(place))
    assert located is not None and located.text == "Location: Shop (1.500000, -2.000000)"
