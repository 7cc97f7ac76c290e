"""`PATCH /api/v1/bots/{bot}` with a pipeline of routers and templates: saved when it runs, a 422
naming the step when it does not."""

from __future__ import annotations

from typing import Any

from tests.factories import Service


def triage(to: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "refund", "to": to}], "default": "llm"},
        },
        {"id": "refunds", "kind": "template", "params": {"text": "Refunds take 5 days."}},
        {"id": "llm", "kind": "llm"},
    ]


async def test_patch_saves_a_router_and_a_template(service: Service) -> None:
    await service.import_bot()
    edited = await service.call(
        "PATCH", "/api/v1/bots/faq-bot", json={"pipeline": triage("refunds")}
    )
    assert [step["id"] for step in edited["draft"]["pipeline"]] == ["triage", "refunds", "llm"]
    flow = await service.call("GET", "/api/v1/bots/faq-bot/flow")
    assert [(e["from"], e["to"], e["label"]) for e in flow["edges"]] == [
        ("triage", "refunds", '"refund"'),
        ("triage", "llm", "default"),
    ]


async def test_a_bad_pipeline_is_a_422_naming_the_step(service: Service) -> None:
    await service.import_bot()
    before = await service.call("GET", "/api/v1/bots/faq-bot")
    response = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"pipeline": triage("refundz")}, headers=service.auth()
    )
    assert response.status_code == 422
    assert response.json() == {"error": "step 'triage': routes[0].to names no step 'refundz'"}
    after = await service.call("GET", "/api/v1/bots/faq-bot")
    assert after["revision"] == before["revision"]
