"""API keys over REST: listed without secrets, shown once, revoked at once, within the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.factories import Service


async def _create(service: Service, name: str, role: str, key: str | None = None) -> Any:
    return await service.client.post(
        "/api/v1/keys", json={"name": name, "role": role}, headers=service.auth(key)
    )


async def test_a_key_is_shown_once_listed_without_secrets_and_revoked_at_once(
    service: Service,
) -> None:
    created = await _create(service, "ci", "editor")
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["key"].startswith("cs_") and made["role"] == "editor" and made["team"] == "local"
    assert (await service.client.get("/api/v1/bots", headers=service.auth(made["key"]))).is_success

    listed = await service.call("GET", "/api/v1/keys")
    assert [(k["name"], k["role"], k["current"]) for k in listed] == [
        ("owner", "owner", True),
        ("ci", "editor", False),
    ]
    assert all(set(k) == {"id", "name", "role", "prefix", "created_at", "current"} for k in listed)
    assert all(datetime.fromisoformat(k["created_at"]).tzinfo is not None for k in listed)
    assert made["key"] not in str(listed) and made["key"].startswith(listed[1]["prefix"])
    roles = {m["identity"]: m["role"] for m in await service.call("GET", "/api/v1/members")}
    assert roles["api:ci"] == "editor"

    revoked = await service.client.delete(f"/api/v1/keys/{made['id']}", headers=service.auth())
    assert revoked.status_code == 204
    refused = await service.client.get("/api/v1/bots", headers=service.auth(made["key"]))
    assert refused.status_code == 401
    assert [k["name"] for k in await service.call("GET", "/api/v1/keys")] == ["owner"]
    members = [m["identity"] for m in await service.call("GET", "/api/v1/members")]
    assert "api:ci" not in members

    audit = await service.call("GET", "/api/v1/audit")
    events = {e["action"]: e for e in audit if e["action"].startswith("apikey.")}
    assert events["apikey.create"]["after"] == {"id": made["id"], "role": "editor"}
    assert events["apikey.revoke"]["before"] == {"id": made["id"], "role": "editor"}
    assert made["key"] not in str(audit) and listed[1]["prefix"] not in str(audit)


async def test_admins_manage_keys_below_owner_and_nobody_revokes_their_own(
    service: Service,
) -> None:
    admin = (await _create(service, "ops", "admin")).json()
    owner_id = (await service.call("GET", "/api/v1/keys"))[0]["id"]

    no_owner = await _create(service, "boss", "owner", admin["key"])
    assert no_owner.status_code == 403
    assert no_owner.json() == {"error": "Only an owner can create an owner key."}
    revoke_owner = await service.client.delete(
        f"/api/v1/keys/{owner_id}", headers=service.auth(admin["key"])
    )
    assert revoke_owner.status_code == 403
    assert revoke_owner.json() == {"error": "Only an owner can revoke an owner key."}

    itself = await service.client.delete(
        f"/api/v1/keys/{admin['id']}", headers=service.auth(admin["key"])
    )
    assert itself.status_code == 409
    assert "the key you are calling with" in itself.json()["error"]

    editor = (await _create(service, "ed", "editor", admin["key"])).json()
    assert editor["role"] == "editor"
    for call in (
        service.client.get("/api/v1/keys", headers=service.auth(editor["key"])),
        _create(service, "x", "viewer", editor["key"]),
        service.client.delete(f"/api/v1/keys/{admin['id']}", headers=service.auth(editor["key"])),
    ):
        response = await call
        assert response.status_code == 403
        refusal = response.json()["error"]
        assert refusal.startswith("Managing API keys needs the admin role; you are an editor.")
        assert "--role admin" in refusal  # and how to get a key that may
    gone = await service.client.delete(
        f"/api/v1/keys/{editor['id']}", headers=service.auth(admin["key"])
    )
    assert gone.status_code == 204
    names = [k["name"] for k in await service.call("GET", "/api/v1/keys")]
    assert names == ["owner", "ops"]


async def test_bad_key_requests_change_nothing(service: Service) -> None:
    await _create(service, "ci", "viewer")
    before = await service.call("GET", "/api/v1/keys")
    cases = [
        (await _create(service, "ci", "admin"), 409, "A key named 'ci' exists"),
        (await _create(service, "two words", "viewer"), 422, "name: String should match"),
        (await _create(service, "x", "god"), 422, "role: Input should be"),
        (
            await service.client.delete("/api/v1/keys/999", headers=service.auth()),
            404,
            "No API key",
        ),
        (await service.client.delete("/api/v1/keys/0", headers=service.auth()), 404, "No API key"),
        (await service.client.delete("/api/v1/keys/x", headers=service.auth()), 422, "key_id"),
        (
            await service.client.delete(f"/api/v1/keys/{2**64}", headers=service.auth()),
            404,
            "No API key",
        ),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert await service.call("GET", "/api/v1/keys") == before
    assert (await service.client.get("/api/v1/keys")).status_code == 401


async def test_a_name_freed_by_revoking_takes_the_new_keys_role(service: Service) -> None:
    """The Studio acts with the role of a key's member `api:NAME`: it must be the key's."""
    first = (await _create(service, "ops", "admin")).json()
    await service.call("DELETE", f"/api/v1/keys/{first['id']}")
    again = (await _create(service, "ops", "viewer")).json()
    roles = {m["identity"]: m["role"] for m in await service.call("GET", "/api/v1/members")}
    assert roles["api:ops"] == "viewer" and again["role"] == "viewer"
    studio = await service.client.post(
        "/api/v1/studio/messages", json={"text": "/bots"}, headers=service.auth(again["key"])
    )
    assert studio.status_code == 403
