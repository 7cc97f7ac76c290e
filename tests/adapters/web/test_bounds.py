"""Numbers beyond what the databases store and bodies nested thousands deep are a 4xx with one
line, never a 500, and change nothing."""

from __future__ import annotations

import pytest

from tests.factories import Service

HUGE = 2**70
DEEP_JSON = "[" * 5000 + "]" * 5000
DEEP_YAML = "name: faq-bot\nprompt: " + "[" * 5000 + "]" * 5000 + "\n"


def _one_line_error(response_json: object) -> str:
    assert isinstance(response_json, dict) and set(response_json) == {"error"}
    error = response_json["error"]
    assert isinstance(error, str) and error and "\n" not in error
    return error


async def test_notices_after_beyond_64_bits_is_422(service: Service) -> None:
    response = await service.client.get(
        "/api/v1/studio/messages", params={"after": HUGE}, headers=service.auth()
    )
    assert response.status_code == 422
    assert _one_line_error(response.json()) == (
        "after: Input should be less than or equal to 2147483647"
    )


async def test_rollback_to_a_version_beyond_64_bits_is_422(service: Service) -> None:
    await service.import_bot()
    await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    response = await service.client.post(
        "/api/v1/bots/faq-bot/rollback",
        json={"env": "staging", "version": HUGE},
        headers=service.auth(),
    )
    assert response.status_code == 422
    assert "version" in _one_line_error(response.json())
    bot = await service.call("GET", "/api/v1/bots/faq-bot")
    assert bot["environments"] == {"staging": 1}


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "web", "env": "production", "target": None, "token": None, "x": HUGE},
        {"channel": "telegram", "token": "1" * 30 + ":" + "A" * 35},
        {"channel": "slack", "target": "#" + "x" * 300},
        {"channel": "web", "env": HUGE},
        {"channel": ["web"]},
    ],
)
async def test_deployments_with_odd_values_are_4xx(service: Service, body: object) -> None:
    await service.import_bot()
    response = await service.client.post(
        "/api/v1/bots/faq-bot/deployments", json=body, headers=service.auth()
    )
    assert 400 <= response.status_code < 500, response.text
    _one_line_error(response.json())
    assert await service.call("GET", "/api/v1/deployments") == []


async def test_a_huge_revision_or_test_number_is_4xx(service: Service) -> None:
    await service.import_bot()
    patched = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"revision": HUGE, "prompt": "x"}, headers=service.auth()
    )
    assert patched.status_code == 400
    assert _one_line_error(patched.json()) == (
        "revision must be a whole number from 0 to 2147483647"
    )
    removed = await service.client.delete(
        f"/api/v1/bots/faq-bot/tests/{HUGE}", headers=service.auth()
    )
    assert removed.status_code == 422
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["revision"] == 1


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("application/json", DEEP_JSON, "the spec is nested too deeply"),
        ("application/yaml", DEEP_YAML, "the spec is nested too deeply"),
    ],
)
async def test_a_spec_nested_5000_deep_is_400(
    service: Service, content_type: str, body: str, error: str
) -> None:
    response = await service.client.post(
        "/api/v1/bots/import",
        content=body,
        headers={**service.auth(), "content-type": content_type},
    )
    assert response.status_code == 400
    assert _one_line_error(response.json()) == error
    assert await service.call("GET", "/api/v1/bots") == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/bots/faq-bot"),
        ("POST", "/api/v1/studio/messages"),
        ("POST", "/api/v1/bots/faq-bot/tests"),
        ("POST", "/api/v1/bots/faq-bot/promote"),
    ],
)
async def test_a_json_body_nested_5000_deep_is_400(
    service: Service, method: str, path: str
) -> None:
    await service.import_bot()
    response = await service.client.request(
        method,
        path,
        content='{"text": ' + DEEP_JSON + "}",
        headers={**service.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _one_line_error(response.json()) == "malformed JSON: nested too deeply"
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["revision"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/chat/d%00x/history",
        "/api/v1/bots/faq%00bot",
        "/api/v1/deployments?bot=faq%00bot",
        "/api/v1/bots/faq-bot/knowledge?name=a%00b",
    ],
)
async def test_a_nul_in_the_path_or_query_is_400(service: Service, path: str) -> None:
    response = await service.client.get(path, headers=service.auth())
    assert response.status_code == 400
    assert _one_line_error(response.json()) == "the path or query holds a NUL character (%00)"


async def test_nul_in_a_message_or_a_deployment_target_is_refused(service: Service) -> None:
    deployment = await service.live_web_bot()
    chat = await service.chat(deployment, "hi\x00there")
    assert chat.status_code == 400
    assert _one_line_error(chat.json()) == "the message holds a NUL character"
    studio = await service.client.post(
        "/api/v1/studio/messages", json={"text": "/try faq-bot hi\x00"}, headers=service.auth()
    )
    assert studio.status_code == 400
    assert _one_line_error(studio.json()) == "the message holds a NUL character"
    deploy = await service.client.post(
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "slack", "target": "#a\x00b"},
        headers=service.auth(),
    )
    assert deploy.status_code == 422
    assert "target" in _one_line_error(deploy.json())


async def test_a_non_ascii_session_is_a_new_session_not_a_500(service: Service) -> None:
    deployment = await service.live_web_bot()
    history = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": "x.é"}
    )
    assert history.status_code == 200 and history.json()["messages"] == []
    chat = await service.client.post(
        f"/api/v1/chat/{deployment}", json={"text": "hi", "session": "x.é"}
    )
    assert chat.status_code == 200 and chat.json()["session"] != "x.é"
