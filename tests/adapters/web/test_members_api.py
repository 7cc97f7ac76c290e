"""`PUT /api/v1/members/{user}`: the Studio's `/role` over REST, with the same rules."""

from __future__ import annotations

from tests.factories import Service


async def _roles(service: Service) -> dict[str, str]:
    return {m["identity"]: m["role"] for m in await service.call("GET", "/api/v1/members")}


async def test_an_owner_sets_roles_by_identity_or_name(service: Service) -> None:
    await service.reply("/bots", user="alice")  # alice joins as a viewer
    changed = await service.call("PUT", "/api/v1/members/alice", json={"role": "editor"})
    assert changed == {"identity": "http:alice", "role": "editor", "before": "viewer"}
    again = await service.call("PUT", "/api/v1/members/http:alice", json={"role": "owner"})
    assert again == {"identity": "http:alice", "role": "owner", "before": "editor"}
    assert (await _roles(service))["http:alice"] == "owner"
    audit = await service.call("GET", "/api/v1/audit")
    assert [e["after"] for e in audit if e["action"] == "member.role"] == [
        {"role": "owner"},
        {"role": "editor"},
    ]


async def test_the_studios_role_rules_hold(service: Service) -> None:
    await service.reply("/bots", user="alice")
    await service.reply("/bots", user="bob")
    admin = await service.app.state.core.ops.create_api_key(team="local", role="admin", name="ops")
    editor = await service.app.state.core.ops.create_api_key(team="local", role="editor", name="e")
    await service.call("PUT", "/api/v1/members/bob", json={"role": "owner"})
    before = await _roles(service)
    cases = [
        ("alice", {"role": "owner"}, admin.key, 403, "Only an owner can make or unmake an owner."),
        ("bob", {"role": "viewer"}, admin.key, 403, "Only an owner can make or unmake an owner."),
        ("alice", {"role": "editor"}, editor.key, 403, "Changing roles needs the admin role"),
        ("api:ops", {"role": "owner"}, None, 422, "An API key keeps the role it was made with"),
        ("nobody", {"role": "editor"}, None, 404, "No member 'nobody'"),
        ("alice", {"role": "god"}, None, 422, "role: Input should be"),
        ("alice", {}, None, 422, "role: Field required"),
    ]
    for user, body, key, status, message in cases:
        response = await service.client.put(
            f"/api/v1/members/{user}", json=body, headers=service.auth(key)
        )
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"] and message in response.json()["error"]
    assert await _roles(service) == before

    await service.call("PUT", "/api/v1/members/alice", json={"role": "editor"}, key=admin.key)
    assert (await _roles(service))["http:alice"] == "editor"
