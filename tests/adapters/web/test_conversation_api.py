"""`GET /api/v1/bots/{bot}/conversations/{id}`: one conversation's messages as kept, oldest
first, with each answer's version, cost and end users' ratings; paged by id; only the team's
own bot's real (not `/try`) conversations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.factories import Service

PATH = "/api/v1/bots/faq-bot/conversations"


async def _talk(service: Service) -> tuple[int, dict[str, Any]]:
    deployment = await service.live_web_bot(fallback="No idea yet.")
    first = (await service.chat(deployment, "hello")).json()
    second = (await service.chat(deployment, "again", first["session"])).json()
    rated = await service.client.post(
        f"/api/v1/chat/{deployment}/feedback",
        json={"session": first["session"], "message_id": second["message_id"], "rating": "down"},
    )
    assert rated.status_code == 204
    [listed] = await service.call("GET", PATH)
    return listed["id"], second


async def test_a_conversation_comes_whole_with_its_ratings(service: Service) -> None:
    conversation, second = await _talk(service)
    got = await service.call("GET", f"{PATH}/{conversation}")
    assert (got["id"], got["channel"], got["ended_at"]) == (conversation, "web", None)
    messages = got["messages"]
    assert [(m["role"], m["text"]) for m in messages] == [
        ("user", "hello"),
        ("assistant", "No idea yet."),
        ("user", "again"),
        ("assistant", "No idea yet."),
    ]
    answer = messages[-1]
    assert answer["id"] == second["message_id"] and answer["version"] == 1
    assert (answer["ratings_up"], answer["ratings_down"]) == (0, 1)
    assert messages[1]["ratings_down"] == 0 and answer["latency_ms"] is not None

    page = await service.call("GET", f"{PATH}/{conversation}", params={"limit": 3})
    rest = await service.call(
        "GET", f"{PATH}/{conversation}", params={"after": page["messages"][-1]["id"]}
    )
    assert page["messages"] + rest["messages"] == messages


async def test_only_the_teams_own_real_conversations(service: Service) -> None:
    conversation, _ = await _talk(service)
    missing = await service.client.get(f"{PATH}/{conversation + 100}", headers=service.auth())
    assert missing.status_code == 404
    assert missing.json()["error"] == f"faq-bot has no conversation {conversation + 100}."
    await service.import_bot("other-bot")
    elsewhere = await service.client.get(
        f"/api/v1/bots/other-bot/conversations/{conversation}", headers=service.auth()
    )
    assert elsewhere.status_code == 404
    acme = (await service.app.state.core.ops.create_team("acme")).key
    hidden = await service.client.get(f"{PATH}/{conversation}", headers=service.auth(acme))
    assert hidden.status_code == 404
    for bad in ("0", "x"):
        response = await service.client.get(f"{PATH}/{bad}", headers=service.auth())
        assert response.status_code == 422
    await service.reply("/try faq-bot hi")  # a sandbox conversation: not listed, not readable
    async with service.app.state.core.db.read_conn() as conn:
        sandbox = (
            await conn.execute(text("select max(id) from conversation where sandbox"))
        ).scalar_one()
    tried = await service.client.get(f"{PATH}/{sandbox}", headers=service.auth())
    assert tried.status_code == 404
