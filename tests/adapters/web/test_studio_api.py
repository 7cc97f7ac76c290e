"""REST for the Studio's features: the studio endpoint's rules, test cases (multi-turn), runs
that gate promotion, invites."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import running_service, service_settings
from tests.factories import Service, spec_yaml
from tests.fakes.llm import FakeLLM


async def test_the_studio_endpoint_is_for_owner_and_admin_keys(service: Service) -> None:
    editor = await service.app.state.core.ops.create_api_key(team="local", role="editor", name="ci")
    body = {"text": "/bots"}
    response = await service.client.post(
        "/api/v1/studio/messages", headers=service.auth(editor.key), json=body
    )
    assert response.status_code == 403 and "admin role" in response.json()["error"]
    response = await service.client.post("/api/v1/studio/messages", json=body)
    assert response.status_code == 401
    response = await service.client.post(
        "/api/v1/studio/messages", headers=service.auth(), json={"text": "/bots", "user": "a b"}
    )
    assert response.status_code == 422


async def test_what_the_studio_endpoint_cannot_act_on_is_refused(service: Service) -> None:
    """Nothing a front sends goes unheard: text with a button's action, a field the endpoint does
    not know, a body that is not JSON: each is refused, naming it, and nothing runs."""
    url = "/api/v1/studio/messages"
    both = {"text": "/newbot other-bot", "action": "confirm:x"}
    response = await service.client.post(url, headers=service.auth(), json=both)
    assert response.status_code == 422
    assert "text or action, not both" in response.json()["error"]
    extra = {"text": "/newbot other-bot", "bot": "faq-bot"}
    response = await service.client.post(url, headers=service.auth(), json=extra)
    assert response.status_code == 422 and response.json()["error"].startswith("bot:")
    response = await service.client.post(
        url, headers={**service.auth(), "content-type": "application/json"}, content="/bots"
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON: ")
    assert await service.call("GET", "/api/v1/bots") == []


async def test_multi_turn_cases_by_rest_run_and_gate(tmp_path: Path, llm: FakeLLM) -> None:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url)
    async with running_service(settings) as service:
        await service.import_bot(model="openai/fake-model")
        case = {
            "turns": ["My order is 42.", "What was my order number?"],
            "expect": {"kind": "regex", "value": r"\b42\b"},
        }
        assert (await service.call("POST", "/api/v1/bots/faq-bot/tests", json=case)) == {
            "number": 1
        }
        listed = await service.call("GET", "/api/v1/bots/faq-bot/tests")
        assert listed == [case]

        llm.reply("Noted.")
        llm.reply("It was 42.")
        report = await service.call("POST", "/api/v1/bots/faq-bot/tests/run")
        assert report["passed"] == 1 and report["failed"] == 0
        second = llm.calls[-1].messages
        assert [m["content"] for m in second][1:] == [
            "My order is 42.",
            "Noted.",
            "What was my order number?",
        ]
        promoted = await service.call(
            "POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"}
        )
        assert promoted["version"] == 1

        await service.call("DELETE", "/api/v1/bots/faq-bot/tests/1")
        assert await service.call("GET", "/api/v1/bots/faq-bot/tests") == []
        gone = await service.client.delete("/api/v1/bots/faq-bot/tests/1", headers=service.auth())
        assert gone.status_code == 422


async def test_promote_runs_the_drafts_tests_first(service: Service) -> None:
    failing = {"turns": ["hello"], "expect": {"kind": "contains", "value": "5 days"}}
    await service.import_bot(tests=[failing])
    refused = await service.client.post(
        "/api/v1/bots/faq-bot/promote", headers=service.auth(), json={"to": "staging"}
    )
    assert refused.status_code == 409
    assert refused.json()["error"].startswith(
        "Not promoted: faq-bot's tests did not pass on this draft (0 passed, 1 failed: "
        "1. \"hello\": expected it to contain '5 days')"
    )
    assert await service.call("GET", "/api/v1/bots/faq-bot/versions") == []
    assert "did not pass" in await service.reply("/promote faq-bot")  # the run was stored

    forced = {"to": "staging", "force": True}  # owners still may
    assert (await service.call("POST", "/api/v1/bots/faq-bot/promote", json=forced))["version"] == 1

    passing = {"turns": ["hello"], "expect": {"kind": "contains", "value": "answer that"}}
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"tests": [passing]})
    promoted = await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    # after a passing run
    assert promoted == {"version": 2, "env": "staging", "created": True, "notes": []}


async def test_promote_during_a_studio_run_waits_for_its_report(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        case = {"turns": ["hi"], "expect": {"kind": "contains", "value": "answer"}}
        await service.import_bot(model="openai/fake-model", tests=[case])
        llm.stall(0.5, text="The answer.")
        await service.reply("/test faq-bot")
        refused = await service.client.post(
            "/api/v1/bots/faq-bot/promote", headers=service.auth(), json={"to": "staging"}
        )
        assert refused.status_code == 409
        assert refused.json()["error"] == (
            "faq-bot's tests are still running: promote again when they finish "
            "(an owner may --force)"
        )
        await service.app.state.core.studio.drain()
        promoted = await service.call("POST", "/api/v1/bots/faq-bot/promote", json={})
        assert promoted["version"] == 1 and len(llm.calls) == 1  # that run, not another


async def test_yaml_tests_and_bad_cases(service: Service) -> None:
    text = spec_yaml(
        tests=[{"turns": ["hi", "again"], "expect": {"kind": "contains", "value": "can't"}}]
    )
    imported = await service.client.post(
        "/api/v1/bots/import",
        content=text,
        headers={**service.auth(), "content-type": "application/yaml"},
    )
    assert imported.status_code == 201, imported.text
    report = await service.call("POST", "/api/v1/bots/faq-bot/tests/run")
    assert report["passed"] == 1
    bad = await service.client.post(
        "/api/v1/bots/faq-bot/tests",
        headers=service.auth(),
        json={"turns": ["x"], "expect": {"kind": "regex", "value": "(["}},
    )
    assert bad.status_code == 422
    assert len(await service.call("GET", "/api/v1/bots/faq-bot/tests")) == 1


async def test_invites_by_rest(service: Service) -> None:
    code = (await service.call("POST", "/api/v1/invites"))["code"]
    assert code.startswith("join-")
    viewer = await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    response = await service.client.post("/api/v1/invites", headers=service.auth(viewer.key))
    assert response.status_code == 403
