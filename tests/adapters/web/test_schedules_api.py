"""Schedules, follow-ups and triggers over REST: the same operations as in chat, JSON errors with
the right status, and a trigger reaching a known end user on the web and on Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.telegram.pacing import ChatPacer
from runtime.scheduler.types import HandedOverError, Sent
from tests.adapters.telegram.test_telegram_bots import deploy, secret_of, send_update, sent
from tests.adapters.telegram.test_telegram_studio import _no_wait
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_payloads import message_update

SCHEDULES = "/api/v1/bots/faq-bot/schedules"
FOLLOWUPS = "/api/v1/bots/faq-bot/followups"
TRIGGER = "/api/v1/bots/faq-bot/trigger"


async def key(service: Service, role: str) -> str:
    made = await service.app.state.core.ops.create_api_key(team="local", role=role, name=role)
    return str(made.key)


async def refused(
    service: Service, method: str, path: str, status: int, *, key: str | None = None, **kw: Any
) -> str:
    response = await service.client.request(method, path, headers=service.auth(key), **kw)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    return str(body["error"])


async def test_schedules_are_added_listed_paused_and_removed(service: Service) -> None:
    await service.live_web_bot()
    added = await service.call(
        "POST", SCHEDULES, json={"cron": "0 9 * * 1-5", "message": "Hi", "tz": "Europe/Lisbon"}
    )
    assert added["schedule"] == {
        "id": "s1",
        "cron": "0 9 * * 1-5",
        "tz": "Europe/Lisbon",
        "message": "Hi",
        "to": None,
        "to_name": None,
        "grace_minutes": 60,
    }
    assert added["revision"] == 2
    next_run = datetime.fromisoformat(added["next_run"]).astimezone(ZoneInfo("Europe/Lisbon"))
    assert (next_run.hour, next_run.minute, next_run.isoweekday() <= 5) == (9, 0, True)
    taken = {"cron": "0 9 * * *", "message": "hi", "id": "s1"}
    assert "already" in await refused(service, "POST", SCHEDULES, 409, json=taken)
    named = await service.call(
        "POST", SCHEDULES, json={"cron": "*/5 * * * *", "message": "prompt: news", "id": "news"}
    )
    assert named["schedule"]["id"] == "news"
    listed = await service.call("GET", SCHEDULES)
    assert [s["id"] for s in listed["schedules"]] == ["s1", "news"]
    assert listed["live"] == []  # production runs v1, which has none
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"})
    live = (await service.call("GET", SCHEDULES))["live"]
    assert {(s["env"], s["version"], s["schedule_id"]) for s in live} == {
        (env, 2, ident) for env in ("staging", "production") for ident in ("s1", "news")
    }
    assert all(s["next_run"] and not s["paused"] and s["last_run"] is None for s in live)

    paused = await service.call("POST", f"{SCHEDULES}/s1/pause")
    assert paused == {"id": "s1", "paused": True, "changed": True}
    assert (await service.call("POST", f"{SCHEDULES}/s1/pause"))["changed"] is False
    live = (await service.call("GET", SCHEDULES))["live"]
    assert [s["next_run"] for s in live if s["schedule_id"] == "s1"] == [None, None]
    resumed = await service.call("POST", f"{SCHEDULES}/s1/resume")
    assert resumed == {"id": "s1", "paused": False, "changed": True}

    removed = await service.client.delete(f"{SCHEDULES}/news", headers=service.auth())
    assert removed.status_code == 204
    assert [s["id"] for s in (await service.call("GET", SCHEDULES))["schedules"]] == ["s1"]
    assert "has no schedule 'news'" in await refused(service, "DELETE", f"{SCHEDULES}/news", 404)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"cron": "0 9 * *", "message": "hi"}, 422, "is not a cron expression"),
        ({"cron": "0 0 9 * * *", "message": "hi"}, 422, "at most once a minute"),
        ({"cron": "0 9 * * *", "message": "hi", "tz": "Nowhere/Land"}, 422, "unknown time zone"),
        ({"cron": "0 9 * * *", "message": "hi", "to": "web:nobody-there"}, 422, "schedule 's1'"),
        ({"cron": "0 9 * * *", "message": "hi", "to": "#general"}, 501, "Slack is not configured"),
        ({"cron": "0 9 * * *", "message": "hi", "to": "here"}, 422, "here means"),
        ({"cron": "0 9 * * *", "message": ""}, 422, "message"),
        ({"cron": "0 9 * * *", "message": "hi", "id": "Bad Id"}, 422, "id"),
        ({"cron": "0 9 * * *", "message": "hi", "grace_minutes": -1}, 422, "grace_minutes"),
    ],
)
async def test_bad_schedules_are_refused_and_change_nothing(
    service: Service, body: dict[str, Any], status: int, says: str
) -> None:
    await service.live_web_bot()
    before = await service.call("GET", "/api/v1/bots/faq-bot")
    assert says in await refused(service, "POST", SCHEDULES, status, json=body)
    assert await service.call("GET", "/api/v1/bots/faq-bot") == before


async def test_limits_roles_and_other_teams(service: Service) -> None:
    many = [{"id": f"s{n}", "cron": "0 9 * * *", "message": "hi"} for n in range(1, 101)]
    await service.import_bot(schedules=many)
    body = {"cron": "0 9 * * *", "message": "hi"}
    assert "100 schedules" in await refused(service, "POST", SCHEDULES, 422, json=body)
    assert "has no schedule 'zz'" in await refused(service, "POST", f"{SCHEDULES}/zz/pause", 404)
    too_many = [{"id": f"x{n}", "cron": "0 9 * * *", "message": "hi"} for n in range(101)]
    patched = await refused(
        service, "PATCH", "/api/v1/bots/faq-bot", 422, json={"schedules": too_many}
    )
    assert "schedules" in patched

    viewer = await key(service, "viewer")
    assert len((await service.call("GET", SCHEDULES, key=viewer))["schedules"]) == 100
    for method, path, json in (
        ("POST", SCHEDULES, body),
        ("DELETE", f"{SCHEDULES}/s1", None),
        ("POST", f"{SCHEDULES}/s1/pause", None),
        ("POST", FOLLOWUPS, {"after_minutes": 5, "message": "hi"}),
        ("POST", TRIGGER, {"user": "1", "channel": "web", "text": "hi"}),
    ):
        said = await refused(service, method, path, 403, key=viewer, json=json)
        assert "editor role" in said

    other = (await service.app.state.core.ops.create_team("acme")).key
    for method, path in (("GET", SCHEDULES), ("POST", f"{SCHEDULES}/s1/pause"), ("GET", FOLLOWUPS)):
        assert "No bot named" in await refused(service, method, path, 404, key=other)


async def test_follow_ups_are_added_listed_and_removed(service: Service) -> None:
    await service.import_bot()
    added = await service.call(
        "POST", FOLLOWUPS, json={"after_minutes": 30, "message": "Still there?", "times": 2}
    )
    assert added == {
        "followup": {"id": "f1", "after_minutes": 30, "message": "Still there?", "times": 2},
        "revision": 2,
    }
    for n in range(2, 6):
        await service.call("POST", FOLLOWUPS, json={"after_minutes": n, "message": f"hi {n}"})
    sixth = {"after_minutes": 60, "message": "one more"}
    assert "5 follow-ups" in await refused(service, "POST", FOLLOWUPS, 422, json=sixth)
    for bad in ({"after_minutes": 0, "message": "x"}, {"after_minutes": 43201, "message": "x"}):
        assert "after_minutes" in await refused(service, "POST", FOLLOWUPS, 422, json=bad)
    listed = await service.call("GET", FOLLOWUPS)
    assert [f["id"] for f in listed["followups"]] == ["f1", "f2", "f3", "f4", "f5"]
    removed = await service.client.delete(f"{FOLLOWUPS}/f1", headers=service.auth())
    assert removed.status_code == 204
    assert "has no follow-up 'f1'" in await refused(service, "DELETE", f"{FOLLOWUPS}/f1", 404)
    assert len((await service.call("GET", FOLLOWUPS))["followups"]) == 4


async def test_a_trigger_reaches_a_web_end_user(service: Service) -> None:
    deployment = await service.live_web_bot()
    session = (await service.chat(deployment, "hello")).json()["session"]
    user = f"web:{session[:12]}"
    sent_to = await service.call(
        "POST", TRIGGER, json={"user": user, "channel": "web", "text": "Your order shipped."}
    )
    assert sent_to["text"] == "Your order shipped." and sent_to["user"] == user
    history = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session}
    )
    assert history.json()["messages"][-1]["text"] == "Your order shipped."
    stats = await service.call("GET", "/api/v1/bots/faq-bot/stats?period=24h")
    assert (stats["cost_usd"], stats["unknown_cost_turns"]) == (0.0, 0)  # a set text costs $0
    # The offline model has nothing to say to this prompt but the bot's fallback: nothing is sent.
    prompt = {"user": session[:12], "channel": "web", "prompt": "say hi"}
    assert "could only give its fallback answer" in await refused(
        service, "POST", TRIGGER, 502, json=prompt
    )
    history = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": session}
    )
    assert history.json()["messages"][-1]["text"] == "Your order shipped."

    unknown = {"user": "web:nobody", "channel": "web", "text": "hi"}
    assert "has never talked to this bot" in await refused(
        service, "POST", TRIGGER, 404, json=unknown
    )
    elsewhere = {"user": user, "channel": "telegram", "text": "hi"}
    assert "never talked" in await refused(service, "POST", TRIGGER, 404, json=elsewhere)
    for both_or_none in ({"text": "a", "prompt": "b"}, {}):
        body = {"user": user, "channel": "web", **both_or_none}
        assert "give text or prompt" in await refused(service, "POST", TRIGGER, 422, json=body)
    await service.import_bot("new-bot")
    not_live = {"user": user, "channel": "web", "text": "hi"}
    said = await refused(service, "POST", "/api/v1/bots/new-bot/trigger", 409, json=not_live)
    assert said == "new-bot has no production version yet: promote it to production first"


async def test_a_trigger_to_a_handed_over_conversation_is_a_conflict(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a person of the team has the conversation, the bot keeps quiet: a 409 (the
    scheduler's HandedOverError), not the 502 of a platform that refused the message."""
    await service.live_web_bot()

    async def handed_over(**_: object) -> Sent:
        raise HandedOverError("a person of the team has this conversation now")

    monkeypatch.setattr(service.app.state.core.scheduler, "trigger", handed_over)
    body = {"user": "web:someone", "channel": "web", "text": "hi"}
    said = await refused(service, "POST", TRIGGER, 409, json=body)
    assert said == "a person of the team has this conversation now"


@pytest.fixture
async def tg_service(tmp_path: Path, telegram: FakeTelegram) -> AsyncIterator[Service]:
    settings = service_settings(
        tmp_path, public_url="https://studio.example.com", telegram_api_url=telegram.base_url
    )
    async with running_service(settings) as running:
        running.app.state.core.adapter("telegram").pacer = ChatPacer(sleep=_no_wait)
        yield running


async def test_a_trigger_reaches_a_telegram_end_user(
    tg_service: Service, telegram: FakeTelegram
) -> None:
    service = tg_service
    deployment, bot_token = await deploy(service, telegram, greeting="Hello!")
    hello = message_update("hello", chat_id=55, user_id=55)
    assert (
        await send_update(service, deployment, hello, secret_of(telegram, bot_token))
    ).is_success
    await sent(telegram, bot_token, 1)  # its answer

    body = {"user": "55", "channel": "telegram", "text": "Your order shipped."}
    sent_to = await service.call("POST", TRIGGER, json=body)
    assert sent_to["user"] == "telegram:55"
    delivered = await sent(telegram, bot_token, 2)
    assert str(delivered[-1].body["chat_id"]) == "55"
    assert delivered[-1].body["text"] == "Your order shipped."
    stranger = {**body, "user": "telegram:56"}
    assert "never talked" in await refused(service, "POST", TRIGGER, 404, json=stranger)

    telegram.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", token=bot_token)
    blocked = await refused(service, "POST", TRIGGER, 502, json=body)
    assert "blocked" in blocked


async def test_a_target_set_by_patch_or_import_is_checked_too(service: Service) -> None:
    await service.live_web_bot()
    unreachable = {"id": "s1", "cron": "0 9 * * *", "message": "hi", "to": "web:nobody-there"}
    said = await refused(
        service, "PATCH", "/api/v1/bots/faq-bot", 422, json={"schedules": [unreachable]}
    )
    assert said.startswith("schedule 's1': ")
    fresh = {"name": "new-bot", "schedules": [unreachable]}
    said = await refused(service, "POST", "/api/v1/bots/import", 422, json=fresh)
    assert "new-bot is new, so no deployment of it reaches web:nobody-there yet" in said
    assert [b["name"] for b in await service.call("GET", "/api/v1/bots")] == ["faq-bot"]
    everyone = {"id": "s1", "cron": "0 9 * * *", "message": "hi"}  # no target: nothing to check
    patched = await service.call("PATCH", "/api/v1/bots/faq-bot", json={"schedules": [everyone]})
    assert patched["draft"]["schedules"][0]["to"] is None


@pytest.mark.parametrize("size", [8, 101, 120])
async def test_a_web_session_target_is_read_as_patch_and_import_read_it(
    service: Service, size: int
) -> None:
    """One definition of a web session: REST names what is wrong with it as PATCH does."""
    await service.live_web_bot()
    unknown = {"cron": "0 9 * * *", "message": "hi", "to": f"web:{'a' * size}"}
    said = await refused(service, "POST", SCHEDULES, 422, json=unknown)
    patched = await refused(
        service, "PATCH", "/api/v1/bots/faq-bot", 422, json={"schedules": [{"id": "s1", **unknown}]}
    )
    assert said == patched and said.startswith("schedule 's1': no web chat session aaaa")
    too_long = {**unknown, "to": f"web:{'a' * 121}"}
    said = await refused(service, "POST", SCHEDULES, 422, json=too_long)
    assert said.startswith(f"'web:{'a' * 56}' is not a web session: web: then its id, 8 to 120")
