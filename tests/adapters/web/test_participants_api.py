"""Participant memory over REST: `/api/v1/bots/{bot}/participants/{user}` and its memory."""

from __future__ import annotations

from typing import Any

from tests.factories import Service
from tests.people import bot_id, remembered, rows, talked

BASE = "/api/v1/bots/faq-bot/participants"


async def _refused(
    service: Service, method: str, path: str, status: int, says: str, **kwargs: Any
) -> None:
    headers = {**service.auth(), **kwargs.pop("headers", {})}
    response = await service.client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"] and says in response.json()["error"]


async def test_see_set_and_forget_memory(service: Service) -> None:
    await service.import_bot("faq-bot")
    await talked(service, "faq-bot", "telegram:77")

    assert await service.call("GET", f"{BASE}/telegram:77") == {
        "bot": "faq-bot",
        "user": "telegram:77",
        "memory": [],
    }
    for key, value in (("plan", "pro"), ("seats", 3), ("ratio", 0.5), ("vip", False)):
        saved = await service.call("PUT", f"{BASE}/telegram:77/memory/{key}", json={"value": value})
    assert saved["channel"] == "telegram" and saved["user"] == "telegram:77"
    assert saved["values"] == {"plan": "pro", "seats": 3, "ratio": 0.5, "vip": False}
    assert saved["updated_at"].endswith("Z") or "+00:00" in saved["updated_at"]
    # a string stays a string, whatever it looks like
    await service.call("PUT", f"{BASE}/77/memory/zip", json={"value": "02134"})
    shown = await service.call("GET", f"{BASE}/77")
    assert [(m["channel"], m["values"]["zip"]) for m in shown["memory"]] == [("telegram", "02134")]

    response = await service.client.delete(f"{BASE}/telegram:77/memory", headers=service.auth())
    assert response.status_code == 204 and response.content == b""
    assert (await service.call("GET", f"{BASE}/telegram:77"))["memory"] == []
    left = await rows(service)
    assert len(left["conversations"]) == 1 and left["messages"][0][1] == 2


async def test_bad_requests_get_one_line_and_change_nothing(service: Service) -> None:
    await service.import_bot("faq-bot")
    await remembered(service, "faq-bot", "telegram:1", {"plan": "pro"})
    await remembered(service, "faq-bot", "slack:1", {"plan": "free"})
    viewer = await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    editor = await service.app.state.core.ops.create_api_key(team="local", role="editor", name="e")
    other = await service.app.state.core.ops.create_team("other")
    before = await rows(service)

    await _refused(service, "GET", f"{BASE}/telegram:2", 404, "No end user telegram:2 has talked")
    await _refused(service, "DELETE", f"{BASE}/telegram:2", 404, "No end user telegram:2")
    await _refused(service, "DELETE", f"{BASE}/telegram:2/memory", 404, "No end user")
    put = {"json": {"value": "x"}}
    await _refused(service, "PUT", f"{BASE}/telegram:2/memory/plan", 404, "No end user", **put)
    await _refused(service, "PUT", f"{BASE}/telegram:1/memory/Plan", 422, "not a memory key", **put)
    await _refused(
        service, "PUT", f"{BASE}/1/memory/plan", 422, "say which (slack:1, telegram:1)", **put
    )
    await _refused(
        service,
        "PUT",
        f"{BASE}/telegram:1/memory/plan",
        422,
        "too long",
        json={"value": "x" * 1001},
    )
    for body in ({"value": None}, {"value": [1]}, {}, {"value": {"a": 1}}):
        await _refused(service, "PUT", f"{BASE}/telegram:1/memory/plan", 422, "value", json=body)
    await _refused(
        service,
        "PUT",
        f"{BASE}/telegram:1/memory/plan",
        422,
        "value",
        content=b'{"value": NaN}',
        headers={"content-type": "application/json"},
    )
    await _refused(service, "GET", f"{BASE}/a%20b", 422, "not an end user")
    await _refused(service, "GET", "/api/v1/bots/nope/participants/telegram:1", 404, "No bot")

    for key, method, path, status, says in [
        (viewer.key, "GET", f"{BASE}/telegram:1", 403, "needs the editor role"),
        (viewer.key, "DELETE", f"{BASE}/telegram:1/memory", 403, "needs the editor role"),
        (editor.key, "DELETE", f"{BASE}/telegram:1", 403, "needs the admin role"),
        (other.key, "GET", f"{BASE}/telegram:1", 404, "No bot named 'faq-bot'"),
        (other.key, "DELETE", f"{BASE}/telegram:1", 404, "No bot named 'faq-bot'"),
        ("nope", "GET", f"{BASE}/telegram:1", 401, "invalid API key"),
    ]:
        response = await service.client.request(method, path, headers=service.auth(key))
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"] and says in response.json()["error"]
    response = await service.client.put(
        f"{BASE}/telegram:1/memory/plan", json={"value": "x"}, headers=service.auth(viewer.key)
    )
    assert response.status_code == 403
    assert await rows(service) == before


async def test_forget_a_person_everywhere_and_only_them(service: Service) -> None:
    deployment = await service.live_web_bot("faq-bot")
    await service.import_bot("sales-bot")
    first = await service.chat(deployment, "Hello?")
    session = first.json()["session"]
    await service.chat(deployment, "Anyone there?", session=session)
    person = f"web:{session[:12]}"
    await remembered(service, "faq-bot", person, {"email": "a@b.c"})
    await talked(service, "faq-bot", person, channel="sandbox")  # not a member: still that id
    others = await service.chat(deployment, "I am someone else")
    someone = f"web:{others.json()['session'][:12]}"
    await remembered(service, "faq-bot", someone, {"email": "x@y.z"})
    await talked(service, "sales-bot", person)
    await remembered(service, "sales-bot", person, {"email": "a@b.c"})
    faq, sales = await bot_id(service, "faq-bot"), await bot_id(service, "sales-bot")

    forgotten = await service.call("DELETE", f"{BASE}/{person}")
    assert forgotten == {
        "bot": "faq-bot",
        "user": person,
        "memory": 1,
        "conversations": 2,
        "messages": 6,
    }
    left = await rows(service)
    assert sorted((b, u) for _, b, _, u in left["conversations"]) == [
        (faq, someone),
        (sales, person),
    ]
    assert sorted((b, u) for b, _, u, _ in left["memory"]) == [(faq, someone), (sales, person)]
    kept = {conversation_id for conversation_id, *_ in left["conversations"]}
    assert {conversation_id for conversation_id, _ in left["messages"]} == kept

    # the person may talk again: a new conversation, without the forgotten turns
    again = await service.chat(deployment, "Back again", session=session)
    assert again.status_code == 200, again.text
    history = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session}
    )
    assert [m["text"] for m in history.json()["messages"]] == [
        "Back again",
        again.json()["reply"],
    ]
    audit = await service.call("GET", "/api/v1/audit")
    event = next(e for e in audit if e["action"] == "participant.forget")
    assert "a@b.c" not in str(event) and "Hello?" not in str(event)


async def test_the_routes_are_documented(service: Service) -> None:
    paths = (await service.call("GET", "/openapi.json"))["paths"]
    person = paths["/api/v1/bots/{bot}/participants/{user}"]
    assert set(person) == {"get", "delete"}
    assert set(person["get"]["responses"]) == {"200", "401", "403", "404", "422"}
    memory = paths["/api/v1/bots/{bot}/participants/{user}/memory"]
    assert set(memory["delete"]["responses"]) == {"204", "401", "403", "404", "422"}
    value = paths["/api/v1/bots/{bot}/participants/{user}/memory/{key}"]["put"]
    assert set(value["responses"]) == {"200", "400", "401", "403", "404", "413", "422"}
