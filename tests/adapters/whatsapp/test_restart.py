"""A restart after a crash that left WhatsApp messages acknowledged but unanswered, and an answer
recorded but not yet sent: the restarted service answers each message once and sends the
recorded answer once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from adapters.whatsapp.payloads import Message, incoming
from runtime.messages import OutgoingMessage
from storage import inbox
from tests.adapters.whatsapp.conftest import PUBLIC, deploy
from tests.conftest import running_service, service_settings
from tests.fakes.meta import FakeMeta
from tests.fakes.meta_payloads import PHONE_NUMBER_ID, WA_ID, wa_text, whatsapp_payload


def _bodies(meta: FakeMeta) -> list[str]:
    return [m["text"]["body"] for m in meta.sent(PHONE_NUMBER_ID, WA_ID) if m["type"] == "text"]


async def test_what_was_acknowledged_is_answered_once_after_a_restart(
    tmp_path: Path, meta: FakeMeta
) -> None:
    settings = service_settings(tmp_path, public_url=PUBLIC, studio_whatsapp_api_url=meta.base_url)
    texts = ("first", "second", "third")
    async with running_service(settings) as before:
        deployment = (await deploy(before, meta))["id"]
        runtime = before.app.state.core.runtime
        for text in texts:  # recorded (the 200 went to Meta), then the process dies
            item = wa_text(text)
            meta.inbound(whatsapp_payload(item))
            message = incoming(deployment, Message.model_validate(item))
            assert message is not None
            assert await runtime.accept(message)
        # an answer recorded in the outbox, not yet sent when the process died
        recorded = OutgoingMessage(address=message.address, text="recorded before the crash")

        def store(conn: Connection) -> int:
            payload = recorded.model_dump(mode="json")
            return inbox.add_outbound(conn, deployment_id=deployment, payload=payload, worker=None)

        assert await runtime.writes.run(store)
    assert _bodies(meta) == []

    async with running_service(settings) as after:
        await after.app.state.core.runtime.backlog.wait()
        await meta.wait_for("messages", len(texts) + 1, timeout_s=30)
        sent = _bodies(meta)
        assert sent.count("recorded before the crash") == 1
        assert len(sent) == len(texts) + 1  # each message answered once

    async with running_service(settings):  # and a second restart sends nothing again
        pass
    assert len(_bodies(meta)) == len(texts) + 1
