"""Evaluation runs and the gate over REST: `POST /api/v1/bots/{bot}/evals` starts a run in the
background (202), `GET …/evals[/{id}[/chart.png]]` read it, `GET|PUT|DELETE …/evals/gate`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from builders.dataset import DatasetContent, DatasetRow, Evaluator
from storage.datasets import DatasetRepository
from storage.evals import EvalRepository
from tests.factories import Service
from tests.png import png_size

CONTENT = DatasetContent(
    rows=[
        DatasetRow(id=1, turns=["how do refunds work?"], expected="refund"),
        DatasetRow(id=2, turns=["and returns?"], expected="store credit"),
    ],
    evaluators=[Evaluator(kind="contains")],
)


async def _dataset(service: Service, name: str = "golden", bot: str = "faq-bot") -> None:
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    draft = await core.ops.draft(caller, bot)
    async with core.db.write() as session:
        await DatasetRepository(session).save(
            team_id=caller.team_id, bot_id=draft.bot_id, name=name, content=CONTENT, actor="test"
        )


async def _key(service: Service, role: str) -> str:
    ops = service.app.state.core.ops
    return (await ops.create_api_key(team="local", role=role, name=f"{role}-key")).key  # type: ignore[no-any-return]


async def _finished(service: Service, path: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The run at `path` once it is no longer running (polling, as a client would)."""
    deadline = time.monotonic() + timeout_s
    while True:
        run: dict[str, Any] = await service.call("GET", path)
        if run["status"] != "running":
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.02)


async def test_a_run_starts_at_once_and_is_read_back_with_its_results(service: Service) -> None:
    await service.import_bot(fallback="Refunds go back to your card.")
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"fallback": "No idea."})
    await _dataset(service)
    started = await service.client.post(
        "/api/v1/bots/faq-bot/evals",
        json={"dataset": None, "versions": []},
        headers=service.auth(),
    )
    assert started.status_code == 202
    assert started.json() == {"id": 1, "status": "running"}

    run = await _finished(service, "/api/v1/bots/faq-bot/evals/1")
    assert (run["bot"], run["dataset"], run["status"], run["done"], run["total"]) == (
        "faq-bot",
        "golden",
        "done",
        4,
        4,
    )
    assert run["dataset_hash"] == CONTENT.content_hash()
    assert [(v["label"], v["number"], v["ref"]) for v in run["versions"]] == [
        ("v1", 1, "staging"),
        ("draft", None, "draft"),
    ]
    assert [(s["label"], s["score"], s["passed"], s["failed"]) for s in run["summary"]] == [
        ("v1", 0.5, 1, 1),
        ("draft", 0.0, 0, 2),
    ]
    assert run["cost_usd"] == 0.0 and run["error"] is None and run["finished_at"]
    first = run["results"][0]
    assert {k: first[k] for k in ("row_id", "version", "outcome", "score", "answer")} == {
        "row_id": 1,
        "version": "v1",
        "outcome": "pass",
        "score": 1.0,
        "answer": "Refunds go back to your card.",
    }
    assert first["checks"] == [{"kind": "contains", "outcome": "pass", "reason": ""}]
    # each result names the row as the run scored it (the dataset's snapshot)
    assert (first["turns"], first["expected"]) == (["how do refunds work?"], "refund")
    assert [(r["row_id"], r["version"], r["outcome"]) for r in run["results"][1:]] == [
        (1, "draft", "fail"),
        (2, "v1", "fail"),
        (2, "draft", "fail"),
    ]

    listed = await service.call("GET", "/api/v1/bots/faq-bot/evals")
    assert listed["bot"] == "faq-bot" and [r["id"] for r in listed["runs"]] == [1]
    assert "results" not in listed["runs"][0]

    viewer = await _key(service, "viewer")
    chart = await service.client.get(
        "/api/v1/bots/faq-bot/evals/1/chart.png", headers=service.auth(viewer)
    )
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert png_size(chart.content) == (700, 360)


async def test_refusals_are_one_line_errors_and_start_nothing(service: Service) -> None:
    await service.import_bot()
    await service.live_web_bot("other-bot")
    await _dataset(service)

    async def post(body: dict[str, Any], key: str | None = None) -> tuple[int, str]:
        response = await service.client.post(
            "/api/v1/bots/faq-bot/evals", json=body, headers=service.auth(key)
        )
        return response.status_code, response.json()["error"]

    assert await post({"dataset": "gold"}) == (
        404,
        "faq-bot has no dataset 'gold'; it has: golden",
    )
    assert await post({"versions": ["v4"]}) == (404, "faq-bot has no version v4")
    assert (await post({"versions": ["draft"] * 7}))[0] == 422
    viewer = await _key(service, "viewer")
    status, error = await post({}, viewer)
    assert status == 403 and error.startswith("Running an evaluation needs the editor role")
    assert (await service.call("GET", "/api/v1/bots/faq-bot/evals"))["runs"] == []

    missing = await service.client.get("/api/v1/bots/faq-bot/evals/5", headers=service.auth())
    assert missing.status_code == 404
    assert missing.json() == {"error": "faq-bot has no evaluation run 5"}
    await service.call("POST", "/api/v1/bots/faq-bot/evals", json={})
    await _finished(service, "/api/v1/bots/faq-bot/evals/1")
    foreign = await service.client.get("/api/v1/bots/other-bot/evals/1", headers=service.auth())
    assert foreign.status_code == 404  # run 1 is faq-bot's


async def test_a_chart_of_a_run_not_done_yet_is_a_conflict(service: Service) -> None:
    await service.import_bot()
    await _dataset(service)
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    draft = await core.ops.draft(caller, "faq-bot")
    async with core.db.write() as session:
        await EvalRepository(session).start(
            team_id=caller.team_id,
            bot_id=draft.bot_id,
            dataset_id=1,
            dataset_name="golden",
            dataset_hash="h",
            versions=[{"label": "draft", "number": None, "spec_hash": "x", "ref": "draft"}],
            total=2,
            started_by="test",
            worker=core.db.worker,  # alive: the leader's sweep leaves it running
        )
    chart = await service.client.get(
        "/api/v1/bots/faq-bot/evals/1/chart.png", headers=service.auth()
    )
    assert chart.status_code == 409
    assert chart.json() == {"error": "run 1 has no scores yet: it is running"}
    again = await service.client.post("/api/v1/bots/faq-bot/evals", json={}, headers=service.auth())
    assert again.status_code == 409
    assert again.json()["error"].startswith("faq-bot is already being evaluated (run 1, 0/2)")


async def test_the_gate_over_rest(service: Service) -> None:
    await service.import_bot()
    await _dataset(service)
    path = "/api/v1/bots/faq-bot/evals/gate"
    none = await service.client.get(path, headers=service.auth())
    assert none.status_code == 404 and none.json() == {"error": "faq-bot has no evaluation gate"}

    editor = await _key(service, "editor")
    refused = await service.client.put(
        path, json={"dataset": "golden", "min_percent": 80}, headers=service.auth(editor)
    )
    assert refused.status_code == 403
    unknown = await service.client.put(
        path, json={"dataset": "gold", "min_percent": 80}, headers=service.auth()
    )
    assert unknown.status_code == 404
    assert (
        await service.client.put(
            path, json={"dataset": "golden", "min_percent": 101}, headers=service.auth()
        )
    ).status_code == 422

    described = service.app.openapi()["paths"][path.replace("faq-bot", "{bot}")]["put"]
    assert "to production always, to staging unless an owner forces it" in " ".join(
        described["description"].split()
    )
    gate = await service.call("PUT", path, json={"dataset": "golden", "min_percent": 80})
    assert (gate["dataset"], gate["min_percent"]) == ("golden", 80.0)
    assert (await service.call("GET", path, key=editor))["min_percent"] == 80.0
    promoted = await service.client.post(
        "/api/v1/bots/faq-bot/promote", json={"to": "staging"}, headers=service.auth()
    )
    assert promoted.status_code == 409
    assert promoted.json()["error"] == (
        "not promoted: faq-bot has no evaluation of this draft on golden yet: "
        "/eval faq-bot golden draft"
    )
    deleted = await service.client.delete(path, headers=service.auth())
    assert deleted.status_code == 204
    assert (await service.client.get(path, headers=service.auth())).status_code == 404
    assert (await service.client.delete(path, headers=service.auth())).status_code == 204
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
