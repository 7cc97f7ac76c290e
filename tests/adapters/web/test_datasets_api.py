"""Datasets over REST: the same operations as `/dataset` in chat, from real conversations, the
draft's tests, JSON content or a CSV body; JSON errors with the right status; roles and other
teams; the OpenAPI document describes the bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM

DATASETS = "/api/v1/bots/faq-bot/datasets"
FAKE = "openai/fake-model"  # the fake LLM answers "echo: <the user's message>"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
async def served(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        yield service


async def key(service: Service, role: str, team: str = "local") -> str:
    made = await service.app.state.core.ops.create_api_key(team=team, role=role, name=role)
    return str(made.key)


async def refused(
    service: Service, method: str, path: str, status: int, *, key: str | None = None, **kw: Any
) -> str:
    headers = {**service.auth(key), **kw.pop("headers", {})}
    response = await service.client.request(method, path, headers=headers, **kw)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"]
    return str(body["error"])


async def made(service: Service, status: int, **kw: Any) -> dict[str, Any]:
    headers = {**service.auth(), **kw.pop("headers", {})}
    response = await service.client.post(DATASETS, headers=headers, **kw)
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_dataset_of_real_conversations_read_changed_and_removed(served: Service) -> None:
    deployment = await served.live_web_bot(model=FAKE)
    session = None
    for text in ("hi", "refunds?", "thanks"):
        session = (await served.chat(deployment, text, session)).json()["session"]

    first = await made(served, 201, json={"from": "last", "count": 2})
    assert (first["bot"], first["name"], first["rows"]) == ("faq-bot", "recent", 2)
    rows = first["content"]["rows"]
    assert [(row["id"], row["turns"], row["reference"]) for row in rows] == [
        (1, ["refunds?"], "echo: refunds?"),
        (2, ["thanks"], "echo: thanks"),
    ]
    assert rows[0]["history"] == [
        {"role": "user", "text": "hi"},
        {"role": "assistant", "text": "echo: hi"},
    ]
    assert first["content_hash"].startswith("sha256:") and first["evaluators"] == []
    again = await made(served, 200, json={"from": "last", "name": "recent"})  # 50 by default
    assert again["rows"] == 3 and again["source"] == "production's last 3 turns"

    listed = await served.call("GET", DATASETS)
    assert listed["bot"] == "faq-bot"
    assert [(d["name"], d["rows"]) for d in listed["datasets"]] == [("recent", 3)]
    assert listed["datasets"][0]["updated_at"].endswith(("Z", "+00:00"))
    one = await served.call("GET", f"{DATASETS}/recent")
    assert one["content_hash"] == again["content_hash"]
    assert one["content"] == again["content"]

    patched = await served.call(
        "PATCH", f"{DATASETS}/recent/rows/2", json={"expected": "refund", "kind": "regex"}
    )
    row = patched["content"]["rows"][1]
    assert (row["expected"], row["evaluators"]) == ("refund", [{"kind": "regex"}])
    assert patched["content_hash"] != one["content_hash"]
    said = await refused(
        served,
        "PATCH",
        f"{DATASETS}/recent/rows/2",
        422,
        json={"expected": "(", "kind": "regex"},
    )
    assert said.startswith("row 2's expectation is not a valid regular expression")
    said = await refused(served, "PATCH", f"{DATASETS}/recent/rows/7", 404, json={"expected": "x"})
    assert said == "*recent* has no row 7 (its rows are 1-3)"

    response = await served.client.delete(f"{DATASETS}/recent", headers=served.auth())
    assert response.status_code == 204
    said = await refused(served, "GET", f"{DATASETS}/recent", 404)
    assert said.startswith("faq-bot has no datasets yet")


async def test_tests_and_content_make_datasets(served: Service) -> None:
    tests = [{"turns": ["hi"], "expect": {"kind": "contains", "value": "hi"}}]
    await served.import_bot(model=FAKE, tests=tests)
    from_tests = await made(served, 201, json={"from": "tests"})
    assert from_tests["name"] == "tests" and from_tests["content"]["rows"][0]["expected"] == "hi"

    content = {
        "evaluators": [{"kind": "latency", "max_ms": 1500}, {"kind": "contains"}],
        "rows": [
            {"id": 3, "turns": ["hours?"], "expected": "9"},
            {"id": 7, "turns": ["a", "b"], "history": [{"role": "user", "text": "x"}]},
        ],
    }
    golden = await made(served, 201, json={"name": "golden", "content": content})
    given = [{**row, "source": ""} for row in content["rows"]]  # a row's source defaults to ""
    assert golden["content"] == {**content, "rows": given}
    assert golden["evaluators"] == ["latency", "contains"]
    assert golden["source"] == "content sent by REST"
    replaced = await made(
        served, 200, json={"name": "golden", "content": {"rows": [{"id": 1, "turns": ["z"]}]}}
    )
    assert replaced["evaluators"] == [] and replaced["rows"] == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, 'send "from" ("last" or "tests") or "content", one of them'),
        ({"from": "tests", "content": {"rows": [{"id": 1, "turns": ["x"]}]}}, "one of them"),
        ({"from": "tests", "count": 3}, '"count" goes with "from": "last"'),
        ({"content": {"rows": [{"id": 1, "turns": ["x"]}]}}, "name the dataset the content"),
        ({"from": "last", "count": 501}, "count: Input should be less than or equal to 500"),
        ({"from": "everywhere"}, "from: Input should be 'last' or 'tests'"),
        ({"from": "tests", "name": "Not A Name"}, "name: String should match pattern"),
        ({"from": "tests", "colour": "red"}, "colour: Extra inputs are not permitted"),
        (
            {
                "name": "g",
                "content": {"rows": [{"id": 1, "turns": ["a"]}, {"id": 1, "turns": ["b"]}]},
            },
            "row ids must be unique: 1 is used twice",
        ),
        (
            {"name": "g", "content": {"rows": [{"id": 1, "turns": []}]}},
            "content.rows.0.turns: List should have at least 1 item",
        ),
        (
            {
                "name": "g",
                "content": {
                    "evaluators": [{"kind": "regex"}],
                    "rows": [{"id": 1, "turns": ["a"], "expected": "(x"}],
                },
            },
            "row 1's expectation is not a valid regular expression",
        ),
        (
            {"name": "g", "content": {"rows": [{"id": 1, "turns": ["a\u0000b"]}]}},
            "the dataset would hold a NUL character",
        ),
    ],
)
async def test_bad_json_is_a_422_that_changes_nothing(
    served: Service, body: Any, says: str
) -> None:
    await served.import_bot(
        model=FAKE, tests=[{"turns": ["hi"], "expect": {"kind": "contains", "value": "hi"}}]
    )
    raw = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/json"}
    assert says in await refused(served, "POST", DATASETS, 422, content=raw, headers=headers)
    assert (await served.call("GET", DATASETS))["datasets"] == []


async def test_a_body_that_is_not_json_is_a_400_as_on_every_route(served: Service) -> None:
    await served.import_bot(model=FAKE)
    headers = {"Content-Type": "application/json"}
    says = await refused(served, "POST", DATASETS, 400, content="not json", headers=headers)
    assert says.startswith("malformed JSON: ")
    assert (await served.call("GET", DATASETS))["datasets"] == []


async def test_a_csv_body_makes_a_dataset(served: Service) -> None:
    await served.import_bot(model=FAKE)
    csv = b"input,expected,evaluator\nrefunds?,30 days,\nhi,^echo,regex\n"
    golden = await made(served, 201, content=csv, headers=CSV, params={"name": "golden"})
    assert [(r["turns"], r["expected"], r["evaluators"]) for r in golden["content"]["rows"]] == [
        (["refunds?"], "30 days", [{"kind": "contains"}]),
        (["hi"], "^echo", [{"kind": "regex"}]),
    ]
    assert golden["source"] == "CSV sent by REST"
    again = await made(
        served,
        200,
        content=b"input\nonly\n",
        headers={"Content-Type": "text/csv; charset=utf-8"},
        params={"name": "golden"},
    )
    assert again["rows"] == 1
    before = await served.call("GET", DATASETS)

    said = await refused(
        served, "POST", DATASETS, 422, content=b"q,a\nx,y\n", headers=CSV, params={"name": "golden"}
    )
    assert said == "the CSV needs an input column; it has: q, a; nothing was imported"
    said = await refused(
        served, "POST", DATASETS, 422, content=b"", headers=CSV, params={"name": "x"}
    )
    assert said.startswith("the file is empty")
    said = await refused(
        served,
        "POST",
        DATASETS,
        422,
        content="input\ncafé\n".encode("latin-1"),
        headers=CSV,
        params={"name": "x"},
    )
    assert said.startswith("the file is not UTF-8 text")
    too_many = b"input\n" + b"q\n" * 1001
    said = await refused(
        served, "POST", DATASETS, 422, content=too_many, headers=CSV, params={"name": "x"}
    )
    assert "over 1,000 rows" in said
    said = await refused(served, "POST", DATASETS, 400, content=b"input\nhi\n", headers=CSV)
    assert said == "name the dataset: POST …/datasets?name=golden"
    said = await refused(
        served,
        "POST",
        DATASETS,
        400,
        content=b"input\nhi\n",
        headers={"Content-Type": "text/plain"},
    )
    assert said == "send JSON (application/json) or a CSV file (text/csv)"
    huge = b"input\n" + b"q" * (1024 * 1024)
    said = await refused(
        served, "POST", DATASETS, 413, content=huge, headers=CSV, params={"name": "x"}
    )
    assert said.startswith("the body is")
    assert await served.call("GET", DATASETS) == before


async def test_roles_and_other_teams(served: Service) -> None:
    await served.import_bot(model=FAKE)
    await made(
        served, 201, content=b"input,expected\nhi,hello\n", headers=CSV, params={"name": "main"}
    )
    viewer = await key(served, "viewer")
    assert [d["name"] for d in (await served.call("GET", DATASETS, key=viewer))["datasets"]] == [
        "main"
    ]
    assert (await served.call("GET", f"{DATASETS}/main", key=viewer))["rows"] == 1
    for method, path, kw in (
        ("POST", DATASETS, {"json": {"from": "tests"}}),
        ("POST", DATASETS, {"content": b"input\nx\n", "headers": CSV, "params": {"name": "x"}}),
        ("PATCH", f"{DATASETS}/main/rows/1", {"json": {"expected": "x"}}),
        ("DELETE", f"{DATASETS}/main", {}),
    ):
        said = await refused(served, method, path, 403, key=viewer, **kw)
        assert "needs the editor role" in said

    other = (await served.app.state.core.ops.create_team("acme")).key
    for method, path, kw in (
        ("GET", DATASETS, {}),
        ("GET", f"{DATASETS}/main", {}),
        ("POST", DATASETS, {"json": {"from": "last"}}),
        ("PATCH", f"{DATASETS}/main/rows/1", {"json": {"expected": "x"}}),
        ("DELETE", f"{DATASETS}/main", {}),
    ):
        assert (
            await refused(served, method, path, 404, key=other, **kw) == "No bot named 'faq-bot'."
        )
    assert (await served.call("GET", f"{DATASETS}/main"))["rows"] == 1


async def test_only_admins_change_or_remove_the_evaluation_gate_s_dataset(served: Service) -> None:
    await served.import_bot(model=FAKE)
    for name in ("golden", "other"):
        csv = b"input,expected\nhi,hello\n"
        await made(served, 201, content=csv, headers=CSV, params={"name": name})
    await served.call(
        "PUT", "/api/v1/bots/faq-bot/evals/gate", json={"dataset": "golden", "min_percent": 80}
    )
    editor, admin = await key(served, "editor"), await key(served, "admin")
    before = await served.call("GET", f"{DATASETS}/golden")
    for method, path, kw in (
        (
            "POST",
            DATASETS,
            {"json": {"name": "golden", "content": {"rows": [{"id": 1, "turns": ["x"]}]}}},
        ),
        (
            "POST",
            DATASETS,
            {"content": b"input\nx\n", "headers": CSV, "params": {"name": "golden"}},
        ),
        ("PATCH", f"{DATASETS}/golden/rows/1", {"json": {"expected": "x"}}),
        ("DELETE", f"{DATASETS}/golden", {}),
    ):
        said = await refused(served, method, path, 403, key=editor, **kw)
        assert said.startswith("*golden* is the evaluation gate's dataset: "), said
        assert "needs the admin role; you are an editor" in said
    assert await served.call("GET", f"{DATASETS}/golden") == before
    patched = await served.call(
        "PATCH", f"{DATASETS}/other/rows/1", key=editor, json={"expected": "x"}
    )
    assert patched["content"]["rows"][0]["expected"] == "x"
    patched = await served.call(
        "PATCH", f"{DATASETS}/golden/rows/1", key=admin, json={"expected": "x"}
    )
    assert patched["content"]["rows"][0]["expected"] == "x"


async def test_the_openapi_document_describes_the_bodies(served: Service) -> None:
    document = (await served.client.get("/openapi.json")).json()
    post = document["paths"]["/api/v1/bots/{bot}/datasets"]["post"]
    bodies = post["requestBody"]["content"]
    assert set(bodies) == {"application/json", "text/csv"}
    schema = bodies["application/json"]["schema"]
    assert "$defs" not in json.dumps(schema)
    assert set(schema["properties"]) == {"name", "from", "count", "content"}
    rows = schema["properties"]["content"]["anyOf"][0]["properties"]["rows"]
    assert "turns" in rows["items"]["properties"]
    assert {"200", "201", "401", "403", "404", "409", "413", "422"} <= set(post["responses"])
    paths = set(document["paths"])
    assert {
        "/api/v1/bots/{bot}/datasets/{name}",
        "/api/v1/bots/{bot}/datasets/{name}/rows/{row}",
    } <= paths


async def test_deep_or_huge_bodies_are_one_line_4xx(served: Service) -> None:
    await served.import_bot(model=FAKE)
    headers = {"Content-Type": "application/json"}
    deep = '{"name": "g", "content": ' + "[" * 5000 + "]" * 5000 + "}"
    assert await refused(served, "POST", DATASETS, 400, content=deep, headers=headers)
    huge = {"name": "g", "content": {"rows": [{"id": 2**70, "turns": ["a"]}]}}
    said = await refused(served, "POST", DATASETS, 422, json=huge)
    assert said == "content.rows.0.id: Input should be less than or equal to 1000000"
    said = await refused(served, "PATCH", f"{DATASETS}/g/rows/{2**70}", 422, json={"expected": "x"})
    assert said.startswith("row: Input should be less than or equal to 1000000")
    assert (await served.call("GET", DATASETS))["datasets"] == []
