"""End users on the web channel: sessions, history, /reset, limits, the chat page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.conftest import running_service, service_settings
from tests.factories import Service


async def test_sessions_are_issued_and_reused(service: Service) -> None:
    deployment = await service.live_web_bot(fallback="No idea yet.")
    first = await service.chat(deployment, "hello")
    assert first.status_code == 200
    body = first.json()
    assert body["reply"] == "No idea yet."
    session = body["session"]
    second = (await service.chat(deployment, "again", session)).json()
    assert second["session"] == session
    history = (
        await service.client.get(f"/api/v1/chat/{deployment}/history", params={"session": session})
    ).json()
    assert [m["text"] for m in history["messages"]] == [
        "hello",
        "No idea yet.",
        "again",
        "No idea yet.",
    ]


async def test_a_new_sessions_first_message_looks_up_no_conversation(service: Service) -> None:
    """A session issued with the answer cannot have a conversation yet: its first turn reads
    none from the database (the first word of a streamed answer comes that much sooner)."""
    deployment = await service.live_web_bot(fallback="No idea yet.")
    looked_up: list[str] = []

    def record(*args: Any) -> None:
        if "FROM conversation" in args[2]:
            looked_up.append(args[2])

    engine = service.app.state.core.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        session = (await service.chat(deployment, "hello")).json()["session"]
        assert looked_up == []
        service.app.state.core.runtime.conversations.forget((deployment, session))
        assert (await service.chat(deployment, "again", session)).json()["session"] == session
        assert len(looked_up) == 1  # not cached any more: the stored conversation is read
    finally:
        event.remove(engine, "before_cursor_execute", record)
    history = (
        await service.client.get(f"/api/v1/chat/{deployment}/history", params={"session": session})
    ).json()
    assert [m["text"] for m in history["messages"]] == [
        "hello",
        "No idea yet.",
        "again",
        "No idea yet.",
    ]


async def test_unknown_or_forged_sessions_start_a_new_conversation(service: Service) -> None:
    deployment = await service.live_web_bot()
    session = (await service.chat(deployment, "hello")).json()["session"]
    nonce, mac = session.split(".")
    for forged in ["made-up", f"{nonce}.{mac[::-1]}", f"{nonce[::-1]}.{mac}", ""]:
        answer = (await service.chat(deployment, "hi", forged)).json()
        assert answer["session"] not in (session, forged)
    conversations = await service.call("GET", "/api/v1/bots/faq-bot/conversations")
    assert len(conversations) == 5


async def test_sessions_do_not_cross_deployments(service: Service) -> None:
    first = await service.live_web_bot("bot-a")
    second = await service.live_web_bot("bot-b")
    session = (await service.chat(first, "hello")).json()["session"]
    assert (await service.chat(second, "hello", session)).json()["session"] != session


async def test_reset_ends_the_conversation_and_issues_a_new_session(service: Service) -> None:
    deployment = await service.live_web_bot(greeting="Welcome!")
    session = (await service.chat(deployment, "hello")).json()["session"]
    reset = (await service.chat(deployment, "/reset", session)).json()
    assert reset["reply"] == "Welcome!"
    assert reset["session"] != session
    old = (
        await service.client.get(f"/api/v1/chat/{deployment}/history", params={"session": session})
    ).json()
    assert old["messages"] == []


async def test_bad_input(service: Service) -> None:
    deployment = await service.live_web_bot()
    too_long = await service.chat(deployment, "x" * 4001)
    assert too_long.status_code == 413
    assert "4000" in too_long.json()["error"]
    assert (await service.chat("d_unknown", "hi")).status_code == 404
    for text in ("", " \n\t "):
        empty = await service.client.post(f"/api/v1/chat/{deployment}", json={"text": text})
        assert empty.status_code == 422, text
        assert empty.json()["error"] == "text: String should have at least 1 character"
    not_json = await service.client.post(f"/api/v1/chat/{deployment}", content=b"hi")
    assert not_json.status_code == 422
    assert await service.call("GET", "/api/v1/bots/faq-bot/conversations") == []


async def test_rate_limits_per_session_and_address(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, web_rate_per_session=1, web_rate_per_address=1000)
    async with running_service(settings) as service:
        deployment = await service.live_web_bot()
        session = (await service.chat(deployment, "1")).json()["session"]
        codes = [(await service.chat(deployment, "more", session)).status_code for _ in range(12)]
        assert codes.count(429) >= 2
        assert (await service.chat(deployment, "a new session")).status_code == 200
    settings = service_settings(tmp_path / "b", web_rate_per_session=1000, web_rate_per_address=2)
    async with running_service(settings) as service:
        deployment = await service.live_web_bot()
        codes = [(await service.chat(deployment, "hi")).status_code for _ in range(15)]
        assert 429 in codes
        limited = await service.chat(deployment, "hi")
        assert limited.status_code == 429 and "wait" in limited.json()["error"]


async def test_chat_page_is_served_escaped(service: Service) -> None:
    deployment = await service.live_web_bot()
    page = await service.client.get(f"/chat/{deployment}")
    assert page.status_code == 200
    assert "<title>faq-bot</title>" in page.text
    assert f'data-deployment="{deployment}"' in page.text
    assert (await service.client.get("/chat/d_missing")).status_code == 404


async def test_replies_are_sanitised_html(service: Service) -> None:
    deployment = await service.live_web_bot(
        fallback="<script>x</script> **ok** see [a](https://a.example)"
    )
    body = (await service.chat(deployment, "hi")).json()
    assert "<script>" not in body["html"]
    assert "&lt;script&gt;" in body["html"]
    assert "<strong>ok</strong>" in body["html"]
    assert '<a href="https://a.example"' in body["html"]


async def test_the_greeting_is_the_variant_the_person_talks_to(service: Service) -> None:
    """In a live A/B test, a session's history greets with the greeting of the version that
    answers it; a page without a session yet shows production's."""
    deployment = await service.live_web_bot(fallback="v1 says hi", greeting="v1 welcomes you")
    edit = {"fallback": "v2 says hi", "greeting": "v2 welcomes you"}
    await service.call("PATCH", "/api/v1/bots/faq-bot", json=edit)
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    await service.call("POST", "/api/v1/bots/faq-bot/abtest", json={"a": 1, "b": 2, "percent": 50})
    history = f"/api/v1/chat/{deployment}/history"
    seen = set()
    for _ in range(16):
        answer = (await service.chat(deployment, "hello")).json()
        greeting = await service.client.get(history, params={"session": answer["session"]})
        version = answer["reply"].split()[0]
        assert greeting.json()["greeting"] == f"{version} welcomes you"
        seen.add(version)
    assert seen == {"v1", "v2"}
    assert (await service.client.get(history)).json()["greeting"] == "v1 welcomes you"
