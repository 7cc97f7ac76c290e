"""Live A/B tests over REST: start, status with per-variant figures and the verdict, stop and
promote-winner; every refusal a JSON error with its status, nothing changed."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from storage.abtests import AbTestRow
from tests.ab_traffic import traffic, two_versions
from tests.factories import Service

ABTEST = "/api/v1/bots/faq-bot/abtest"


async def _key(service: Service, role: str) -> str:
    made = await service.app.state.core.ops.create_api_key(team="local", role=role, name=role)
    return str(made.key)


async def _refused(
    service: Service, method: str, path: str, status: int, *, key: str | None = None, **kw: Any
) -> str:
    response = await service.client.request(method, path, headers=service.auth(key), **kw)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"]
    return str(body["error"])


async def test_a_test_is_started_read_and_stopped(service: Service) -> None:
    await two_versions(service)
    viewer = await _key(service, "viewer")
    assert await service.call("GET", ABTEST, key=viewer) == {"bot": "faq-bot", "tests": []}
    start = {"a": 1, "b": 2, "percent": 20}
    assert "needs the admin role" in await _refused(
        service, "POST", ABTEST, 403, key=viewer, json=start
    )
    assert "percent" in await _refused(service, "POST", ABTEST, 422, json={**start, "percent": 100})
    assert "b:" in await _refused(service, "POST", ABTEST, 422, json={"a": 1, "percent": 20})
    assert await _refused(service, "POST", ABTEST, 422, json={**start, "a": 2}) == (
        "vA must be what production runs now: faq-bot production runs v1, not v2 "
        "(/abtest faq-bot v1 vB 20)"
    )
    assert await _refused(service, "POST", ABTEST, 404, json={**start, "b": 7}) == (
        "faq-bot has no version v7 (it has v1 to v2)"
    )
    assert "No bot named" in await _refused(
        service, "POST", "/api/v1/bots/nobot/abtest", 404, json=start
    )
    response = await service.client.post(ABTEST, json=start)
    assert response.status_code == 401
    assert await service.call("GET", ABTEST) == {"bot": "faq-bot", "tests": []}

    started = await service.call("POST", ABTEST, json=start)
    assert {k: started[k] for k in ("env", "version_a", "version_b", "percent", "status")} == {
        "env": "production",
        "version_a": 1,
        "version_b": 2,
        "percent": 20,
        "status": "running",
    }
    assert started["started_at"].endswith("Z") or "+00:00" in started["started_at"]
    assert "already runs an A/B test on production" in await _refused(
        service, "POST", ABTEST, 409, json=start
    )
    on_staging = await service.call(
        "POST", ABTEST, json={"a": 2, "b": 1, "percent": 50, "env": "staging"}
    )

    await traffic(service, "faq-bot", started["id"], "A", turns=45, ups=30, downs=10, errors=5)
    await traffic(service, "faq-bot", started["id"], "B", turns=35, ups=5, downs=30)
    status = await service.call("GET", ABTEST, key=viewer, params={"env": "production"})
    (report,) = status["tests"]
    assert report["test"]["id"] == started["id"] and report["enough_traffic"] is True
    a, b = report["variants"]
    assert {k: a[k] for k in ("variant", "version", "turns", "users", "errors")} == {
        "variant": "A",
        "version": 1,
        "turns": 45,
        "users": 45,
        "errors": 5,
    }
    assert (a["ratings_up"], a["ratings_down"], a["up_rate"]) == (30, 10, 0.75)
    assert (b["ratings_up"], b["ratings_down"], b["scored"], b["online_score"]) == (5, 30, 0, None)
    assert a["cost_per_turn_usd"] == 0.001 and a["latency_p50_ms"] == 203.0
    rating = report["comparisons"][0]
    assert rating["metric"] == "rating" and rating["better_version"] == 1
    assert rating["p_value"] < 0.001 and rating["words"].startswith("👍 rate: v1 is rated better")
    assert report["winner_version"] == 1
    assert report["verdict"][-1] == "Winner so far: v1 on the 👍 rate."
    both = await service.call("GET", ABTEST)
    assert [t["test"]["env"] for t in both["tests"]] == ["production", "staging"]

    stopped = await service.call("POST", f"{ABTEST}/stop", params={"env": "staging"})
    assert stopped["id"] == on_staging["id"] and stopped["status"] == "stopped"
    assert "runs no A/B test on staging" in await _refused(
        service, "POST", f"{ABTEST}/stop", 409, params={"env": "staging"}
    )
    assert "needs the admin role" in await _refused(
        service, "POST", f"{ABTEST}/stop", 403, key=viewer
    )
    stopped = await service.call("POST", f"{ABTEST}/stop")
    assert stopped["id"] == started["id"] and stopped["ended_by"] == "api:owner"
    (last,) = (await service.call("GET", ABTEST, params={"env": "production"}))["tests"]
    assert (
        last["test"]["status"] == "stopped" and last["verdict"][-1] == "Winner: v1 on the 👍 rate."
    )


async def test_promote_winner_promotes_b_or_refuses(service: Service) -> None:
    await two_versions(service)
    winner = f"{ABTEST}/promote-winner"
    assert "runs no A/B test" in await _refused(service, "POST", winner, 409)
    started = await service.call("POST", ABTEST, json={"a": 1, "b": 2, "percent": 20})
    await traffic(service, "faq-bot", started["id"], "A", turns=40, ups=20, downs=20)
    await traffic(service, "faq-bot", started["id"], "B", turns=40, ups=22, downs=18)
    said = await _refused(service, "POST", winner, 409)
    assert said.startswith("No winner to promote yet. 👍 rate: v1 50%, v2 55%; no significant")
    await traffic(service, "faq-bot", started["id"], "B", turns=40, ups=35, downs=5)
    viewer = await _key(service, "viewer")
    assert "needs the admin role" in await _refused(service, "POST", winner, 403, key=viewer)
    bot = await service.call("GET", "/api/v1/bots/faq-bot")
    assert bot["environments"]["production"] == 1

    done = await service.call("POST", winner)
    assert {k: done[k] for k in ("winner_version", "env", "runs", "promoted")} == {
        "winner_version": 2,
        "env": "production",
        "runs": 2,
        "promoted": True,
    }
    assert done["reason"].startswith("v2 won on the 👍 rate (50% for v1, 71% for v2, p = 0.0")
    assert done["test"]["status"] == "promoted" and done["test"]["end_reason"] == done["reason"]
    bot = await service.call("GET", "/api/v1/bots/faq-bot")
    assert bot["environments"]["production"] == 2
    assert "runs no A/B test" in await _refused(service, "POST", winner, 409)


def test_the_routes_are_in_the_api_document(service: Service) -> None:
    paths = service.app.openapi()["paths"]
    assert set(paths["/api/v1/bots/{bot}/abtest"]) == {"get", "post"}
    assert "post" in paths["/api/v1/bots/{bot}/abtest/stop"]
    assert "post" in paths["/api/v1/bots/{bot}/abtest/promote-winner"]


def test_a_test_has_one_schema_its_rows(service: Service) -> None:
    """REST shows a test as storage reads it (one definition of its fields): typed, the status
    one of four, no internal ids but its own."""
    schemas = service.app.openapi()["components"]["schemas"]
    test = schemas["AbTestRow"]
    assert list(test["properties"]) == [field.name for field in fields(AbTestRow)]
    assert "bot_id" not in test["properties"]
    assert test["properties"]["status"]["enum"] == ["running", "stopped", "ended", "promoted"]
    assert test["properties"]["started_at"]["format"] == "date-time"
    assert test["description"].startswith("A live A/B test of a bot's environment")
    for model in ("AbTestReportOut", "WinnerOut"):
        assert schemas[model]["properties"]["test"]["$ref"].endswith("/AbTestRow")
