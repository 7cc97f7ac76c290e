"""Team secrets over REST: a value goes in and never comes out; roles; errors as JSON."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.factories import Service

VALUE = "sk-live-R3stV4lue"
URL = "/api/v1/secrets"
TOOL = {
    "name": "crm",
    "url": "https://crm.example.com/openapi.json",
    "auth": "acme-crm",
    "operations": [{"function": "getOrder", "id": "getOrder", "method": "GET", "path": "/o"}],
}


async def test_put_list_and_delete(service: Service) -> None:
    created = await service.call("PUT", f"{URL}/acme-crm", json={"value": VALUE})
    assert set(created) == {"name", "created", "updated_at", "used_by"}
    assert created["name"] == "acme-crm" and created["created"] is True
    assert datetime.fromisoformat(created["updated_at"]).tzinfo is not None
    replaced = await service.call("PUT", f"{URL}/acme-crm", json={"value": VALUE + "2"})
    assert replaced["created"] is False and replaced["updated_at"] >= created["updated_at"]

    await service.import_bot("faq-bot", tools=[TOOL])
    listed = await service.call("GET", URL)
    assert listed == [
        {
            "name": "acme-crm",
            "updated_at": replaced["updated_at"],
            "updated_by": "api:owner",
            "used_by": ["faq-bot"],
        }
    ]
    removed = await service.call("DELETE", f"{URL}/acme-crm")
    assert removed == {"name": "acme-crm", "used_by": ["faq-bot"]}
    assert await service.call("GET", URL) == []
    gone = await service.client.delete(f"{URL}/acme-crm", headers=service.auth())
    assert gone.status_code == 404 and "no secret called acme-crm" in gone.json()["error"]

    audit = await service.call("GET", "/api/v1/audit")
    changes = [(e["action"], e["after"] or e["before"]) for e in audit if "secret" in e["action"]]
    assert changes == [
        ("secret.remove", {"name": "acme-crm"}),
        ("secret.set", {"name": "acme-crm", "change": "replaced"}),
        ("secret.set", {"name": "acme-crm", "change": "created"}),
    ]
    assert VALUE not in str(audit)


@pytest.mark.parametrize(
    ("name", "body", "status", "error"),
    [
        ("Acme", {"value": VALUE}, 422, "not a secret name"),
        ("-x", {"value": VALUE}, 422, "not a secret name"),
        ("x" * 65, {"value": VALUE}, 422, "not a secret name"),
        ("acme", {"value": ""}, 422, "the value is empty"),
        ("acme", {"value": "x" * 4097}, 422, "at most 4096 characters"),
        ("acme", {"value": "a\nb"}, 422, "visible ASCII"),
        ("acme", {"value": 42}, 422, "value"),
        ("acme", {}, 422, "value"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(
    service: Service, name: str, body: dict[str, object], status: int, error: str
) -> None:
    response = await service.client.put(f"{URL}/{name}", json=body, headers=service.auth())
    assert response.status_code == status
    assert error in response.json()["error"] and VALUE not in response.text
    assert await service.call("GET", URL) == []


async def test_roles(service: Service) -> None:
    ops = service.app.state.core.ops
    viewer = (await ops.create_api_key(team="local", role="viewer", name="v")).key
    editor = (await ops.create_api_key(team="local", role="editor", name="e")).key
    admin = (await ops.create_api_key(team="local", role="admin", name="a")).key
    await service.call("PUT", f"{URL}/acme-crm", json={"value": VALUE})
    refusals = [
        (viewer, "GET", URL, "needs the editor role"),
        (editor, "PUT", f"{URL}/acme-crm", "needs the admin role"),
        (editor, "DELETE", f"{URL}/acme-crm", "needs the admin role"),
    ]
    for key, method, path, error in refusals:
        response = await service.client.request(
            method, path, json={"value": "other"}, headers=service.auth(key)
        )
        assert response.status_code == 403 and error in response.json()["error"]
    assert [s["name"] for s in await service.call("GET", URL, key=editor)] == ["acme-crm"]
    assert (await service.call("PUT", f"{URL}/acme-crm", key=admin, json={"value": "x"}))[
        "created"
    ] is False
    team = (await ops.authenticate(service.key)).team_id
    assert await service.app.state.core.secrets.reveal(team, "acme-crm") == "x"
    assert (await service.client.get(URL)).status_code == 401
