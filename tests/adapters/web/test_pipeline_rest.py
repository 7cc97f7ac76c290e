"""Pipelines by REST: what a saved flow may name outside itself (other bots, step models)."""

from __future__ import annotations

from typing import Any

from tests.factories import Service

ASKS_BILLING = [
    {
        "id": "triage",
        "kind": "router",
        "params": {"routes": [{"keyword": "invoice", "to": "billing"}], "default": "answer"},
    },
    {"id": "billing", "kind": "bot", "params": {"bot": "billing-bot"}},
    {"id": "answer", "kind": "llm"},
]


async def _patch(service: Service, bot: str, body: dict[str, Any]) -> Any:
    return await service.client.patch(f"/api/v1/bots/{bot}", json=body, headers=service.auth())


async def test_a_bot_step_must_ask_a_bot_of_the_team(service: Service) -> None:
    await service.import_bot()
    missing = await _patch(service, "faq-bot", {"pipeline": ASKS_BILLING})
    assert missing.status_code == 422
    assert missing.json() == {
        "error": "step 'billing' asks 'billing-bot', which is no bot of this team"
    }
    await service.import_bot(name="billing-bot")
    saved = await _patch(service, "faq-bot", {"pipeline": ASKS_BILLING})
    assert saved.status_code == 200, saved.text
    assert [s["kind"] for s in saved.json()["draft"]["pipeline"]] == ["router", "bot", "llm"]


async def test_a_bot_step_cannot_ask_its_own_bot(service: Service) -> None:
    await service.import_bot()
    itself = [{**ASKS_BILLING[1], "params": {"bot": "faq-bot"}, "id": "again"}]
    response = await _patch(service, "faq-bot", {"pipeline": itself})
    assert response.status_code == 422
    assert response.json() == {"error": "step 'again' would ask faq-bot itself"}


async def test_a_step_s_own_model_is_checked_like_the_bot_s(service: Service) -> None:
    await service.import_bot()
    router = {
        "id": "triage",
        "kind": "router",
        "params": {
            "routes": [{"intent": "billing questions", "to": "answer"}],
            "default": "answer",
            "model": "anthropic/claude-nokey",
        },
    }
    response = await _patch(
        service, "faq-bot", {"pipeline": [router, {"id": "answer", "kind": "llm"}]}
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("model: ")
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]["pipeline"] == []


async def test_a_broken_graph_is_refused_naming_the_step(service: Service) -> None:
    await service.import_bot()
    lost = [{"id": "answer", "kind": "llm"}, {"id": "lost", "kind": "llm"}]
    response = await _patch(service, "faq-bot", {"pipeline": lost})
    assert response.status_code == 422
    assert response.json() == {
        "error": "step 'lost': no step leads to it (the pipeline starts at 'answer')"
    }
