"""A flow over REST: `GET /api/v1/bots/{bot}/flow` (JSON), `GET .../flow.png` (the picture), and
`PATCH /api/v1/bots/{bot}` with `{"pipeline": [...]}` editing it. The router, template, extract
and bot kinds are in `test_flow_api_steps.py`."""

from __future__ import annotations

from tests.factories import Service
from tests.png import png_size

RETRIEVE_THEN_LLM = [
    {"id": "kb", "kind": "retrieve", "params": {"top_k": 2}, "next": "llm"},
    {"id": "llm", "kind": "llm", "params": {}, "next": None},
]


async def _viewer_key(service: Service) -> str:
    ops = service.app.state.core.ops
    return (await ops.create_api_key(team="local", role="viewer", name="vera")).key  # type: ignore[no-any-return]


async def test_a_plain_bots_flow_is_its_implicit_one(service: Service) -> None:
    await service.import_bot()
    assert await service.call("GET", "/api/v1/bots/faq-bot/flow") == {
        "bot": "faq-bot",
        "implicit": True,
        "entry": "llm",
        "steps": [
            {"id": "llm", "kind": "llm", "params": {}, "next": None, "answers": True, "depth": 0}
        ],
        "edges": [],
        "text": "*faq-bot* runs the plain flow (1 step; no flow of its own yet):\n"
        "`llm` llm (answers)",
    }


async def test_patch_edits_the_pipeline_and_the_flow_shows_it(service: Service) -> None:
    await service.import_bot()
    edited = await service.call(
        "PATCH", "/api/v1/bots/faq-bot", json={"pipeline": RETRIEVE_THEN_LLM}
    )
    assert edited["draft"]["pipeline"] == RETRIEVE_THEN_LLM
    shown = await service.call("GET", "/api/v1/bots/faq-bot/flow")
    assert shown["implicit"] is False and shown["entry"] == "kb"
    assert [(s["id"], s["depth"], s["answers"]) for s in shown["steps"]] == [
        ("kb", 0, False),
        ("llm", 1, True),
    ]
    assert shown["edges"] == [{"from": "kb", "to": "llm", "label": ""}]
    history = await service.call("GET", "/api/v1/bots/faq-bot/history")
    assert history[0]["action"] == "bot.edit" and "pipeline" in history[0]["after"]


async def test_a_pipeline_pointing_nowhere_is_a_422_naming_the_step(service: Service) -> None:
    await service.import_bot()
    broken = [{**RETRIEVE_THEN_LLM[0], "next": "nope"}, RETRIEVE_THEN_LLM[1]]
    response = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"pipeline": broken}, headers=service.auth()
    )
    assert response.status_code == 422
    assert "'kb'" in response.json()["error"] and "'nope'" in response.json()["error"]
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]["pipeline"] == []


async def test_the_picture_is_a_png_any_member_may_read(service: Service) -> None:
    await service.import_bot()
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"pipeline": RETRIEVE_THEN_LLM})
    response = await service.client.get(
        "/api/v1/bots/faq-bot/flow.png", headers=service.auth(await _viewer_key(service))
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="faq-bot-flow.png"'
    width, height = png_size(response.content)
    assert width <= 1600 and height > 100
    missing = await service.client.get("/api/v1/bots/nope/flow.png", headers=service.auth())
    assert missing.status_code == 404 and "No bot named 'nope'" in missing.json()["error"]
    assert (await service.client.get("/api/v1/bots/faq-bot/flow")).status_code == 401
