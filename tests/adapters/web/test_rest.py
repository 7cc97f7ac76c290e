"""The REST API: auth, roles, teams, bad input, and that a failed call changes nothing."""

from __future__ import annotations

from tests.factories import Service, spec_yaml


async def _key(service: Service, role: str, name: str) -> str:
    created = await service.app.state.core.ops.create_api_key(team="local", role=role, name=name)
    return created.key  # type: ignore[no-any-return]


async def test_missing_and_wrong_keys_are_401(service: Service) -> None:
    assert (await service.client.get("/api/v1/bots")).status_code == 401
    wrong = await service.client.get("/api/v1/bots", headers=service.auth("cs_nope"))
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid API key"}


async def test_import_yaml_show_list_export(service: Service) -> None:
    response = await service.client.post(
        "/api/v1/bots/import",
        content=spec_yaml(greeting="Hello"),
        headers={**service.auth(), "content-type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["draft"]["greeting"] == "Hello"
    bots = await service.call("GET", "/api/v1/bots")
    assert [b["name"] for b in bots] == ["faq-bot"]
    assert bots[0]["environments"] == {} and bots[0]["versions"] == 0
    exported = await service.call("GET", "/api/v1/bots/faq-bot/export")
    assert "greeting: Hello" in exported


async def test_malformed_yaml_names_the_line(service: Service) -> None:
    response = await service.client.post(
        "/api/v1/bots/import",
        content="name: faq-bot\nprompt: [unclosed\n  greeting: x\n",
        headers={**service.auth(), "content-type": "application/yaml"},
    )
    assert response.status_code == 400
    assert "line" in response.json()["error"]
    assert await service.call("GET", "/api/v1/bots") == []


async def test_invalid_spec_is_422_naming_the_field(service: Service) -> None:
    response = await service.client.post(
        "/api/v1/bots/import",
        json={"name": "faq-bot", "temperature": 3, "colour": "blue"},
        headers=service.auth(),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert "temperature" in error and "colour: unknown field" in error


async def test_existing_name_is_409_unless_replace(service: Service) -> None:
    await service.import_bot(prompt="first")
    again = await service.client.post(
        "/api/v1/bots/import", json={"name": "faq-bot", "prompt": "second"}, headers=service.auth()
    )
    assert again.status_code == 409
    assert "?replace=true" in again.json()["error"]  # what a REST caller adds
    replaced = await service.client.post(
        "/api/v1/bots/import?replace=true",
        json={"name": "faq-bot", "prompt": "second"},
        headers=service.auth(),
    )
    assert replaced.status_code == 201
    assert replaced.json()["draft"]["prompt"] == "second"


async def test_patch_edits_the_draft_and_a_stale_revision_is_409(service: Service) -> None:
    bot = await service.import_bot()
    edited = await service.call(
        "PATCH", "/api/v1/bots/faq-bot", json={"temperature": 0.2, "revision": bot["revision"]}
    )
    assert edited["draft"]["temperature"] == 0.2
    stale = await service.client.patch(
        "/api/v1/bots/faq-bot",
        json={"temperature": 0.9, "revision": bot["revision"]},
        headers=service.auth(),
    )
    assert stale.status_code == 409
    assert (await service.call("GET", "/api/v1/bots/faq-bot"))["draft"]["temperature"] == 0.2


async def test_patch_refuses_bad_values_and_models_without_keys(service: Service) -> None:
    await service.import_bot()
    for body, fragment in [
        ({"temperature": 2.5}, "temperature"),
        ({"history": -1}, "history"),
        ({"name": "other"}, "renamed"),
        ({"model": "gpt-4o-mini"}, "OPENAI_API_KEY"),
        ({"pipeline": [{"id": "r", "kind": "tool"}]}, "step 'r': tool: is required"),
    ]:
        response = await service.client.patch(
            "/api/v1/bots/faq-bot", json=body, headers=service.auth()
        )
        assert response.status_code == 422, (body, response.text)
        assert fragment in response.json()["error"]
    bot = await service.call("GET", "/api/v1/bots/faq-bot")
    assert bot["revision"] == 1 and bot["draft"]["model"] == "offline"


async def test_unknown_bot_is_404_with_a_suggestion(service: Service) -> None:
    await service.import_bot()
    response = await service.client.get("/api/v1/bots/faq-bto", headers=service.auth())
    assert response.status_code == 404
    assert "faq-bot" in response.json()["error"]


async def test_roles_are_enforced(service: Service) -> None:
    await service.import_bot()
    viewer = await _key(service, "viewer", "vera")
    editor = await _key(service, "editor", "ed")
    assert (
        await service.client.get("/api/v1/bots", headers=service.auth(viewer))
    ).status_code == 200
    denied = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"temperature": 0.1}, headers=service.auth(viewer)
    )
    assert denied.status_code == 403
    assert "editor" in denied.json()["error"]
    ok = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"temperature": 0.1}, headers=service.auth(editor)
    )
    assert ok.status_code == 200
    promote = await service.client.post(
        "/api/v1/bots/faq-bot/promote", json={"to": "staging"}, headers=service.auth(editor)
    )
    assert promote.status_code == 403
    audit = await service.client.get("/api/v1/audit", headers=service.auth(editor))
    assert audit.status_code == 403
    force = await service.client.post(
        "/api/v1/bots/faq-bot/promote",
        json={"to": "staging", "force": True},
        headers=service.auth(await _key(service, "admin", "ada")),
    )
    assert force.status_code == 403 and "owner" in force.json()["error"]


async def test_another_teams_bot_does_not_exist(service: Service) -> None:
    await service.import_bot()
    other = await service.app.state.core.ops.create_team("acme")
    response = await service.client.get("/api/v1/bots/faq-bot", headers=service.auth(other.key))
    assert response.status_code == 404
    deployments = await service.client.get("/api/v1/deployments", headers=service.auth(other.key))
    assert deployments.json() == []


async def test_promote_rollback_versions_and_diff(service: Service) -> None:
    await service.import_bot(prompt="one")
    assert (await service.call("POST", "/api/v1/bots/faq-bot/promote", json={}))["version"] == 1
    again = await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": "staging"})
    assert again == {"version": 1, "env": "staging", "created": False, "notes": []}
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"prompt": "two"})
    assert (await service.call("POST", "/api/v1/bots/faq-bot/promote", json={}))["version"] == 2
    production = await service.call(
        "POST", "/api/v1/bots/faq-bot/promote", json={"to": "production"}
    )
    assert production["version"] == 2
    versions = await service.call("GET", "/api/v1/bots/faq-bot/versions")
    assert [(v["number"], v["environments"]) for v in versions] == [
        (1, []),
        (2, ["production", "staging"]),
    ]
    back = await service.call("POST", "/api/v1/bots/faq-bot/rollback", json={"env": "production"})
    assert back["version"] == 1
    diff = await service.call("GET", "/api/v1/bots/faq-bot/diff?a=v1&b=v2")
    assert [c["field"] for c in diff["changes"]] == ["prompt"]
    assert "-one" in diff["changes"][0]["lines"] and "+two" in diff["changes"][0]["lines"]
    missing = await service.client.post(
        "/api/v1/bots/faq-bot/rollback",
        json={"env": "production", "version": 9},
        headers=service.auth(),
    )
    assert missing.status_code == 404
    history = await service.call("GET", "/api/v1/bots/faq-bot/history")
    assert history[0]["action"] == "bot.rollback"
    assert history[0]["before"] == {"env": "production", "version": 2}


async def test_a_misspelt_field_is_422_naming_it_and_changes_nothing(service: Service) -> None:
    """A field a route does not take is refused, never ignored: `forced` would promote unforced,
    `environment` would start a test in production, `timezone` would schedule in UTC."""
    deployment = await service.live_web_bot()
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"prompt": "two"})
    bot = "/api/v1/bots/faq-bot"
    wrong = [
        (f"{bot}/promote", {"to": "staging", "forced": True}, "forced"),
        (f"{bot}/abtest", {"a": 1, "b": 1, "percent": 20, "environment": "staging"}, "environment"),
        (f"{bot}/schedules", {"cron": "0 9 * * *", "message": "hi", "timezone": "UTC"}, "timezone"),
        (f"{bot}/trigger", {"user": "web:x", "channel": "web", "txt": "hi"}, "txt"),
        (f"/api/v1/chat/{deployment}", {"text": "hi", "sesion": "abc"}, "sesion"),
        ("/api/v1/keys", {"name": "ci", "role": "viewer", "expires": "1d"}, "expires"),
    ]
    before = await service.call("GET", "/api/v1/audit")
    for path, body, field in wrong:
        response = await service.client.post(path, json=body, headers=service.auth())
        assert response.status_code == 422, (path, response.text)
        assert response.json() == {"error": f"{field}: Extra inputs are not permitted"}
    assert await service.call("GET", "/api/v1/audit") == before
    assert [v["number"] for v in await service.call("GET", f"{bot}/versions")] == [1]
    assert (await service.call("GET", f"{bot}/schedules"))["schedules"] == []
    assert len(await service.call("GET", f"{bot}/conversations")) == 0


async def test_deploying_an_environment_without_a_version_is_409(service: Service) -> None:
    await service.import_bot()
    response = await service.client.post(
        "/api/v1/bots/faq-bot/deployments", json={"channel": "web"}, headers=service.auth()
    )
    assert response.status_code == 409
    assert "promote" in response.json()["error"]
    assert await service.call("GET", "/api/v1/deployments") == []


async def test_channels_not_built_yet_say_so(service: Service) -> None:
    await service.live_web_bot()
    response = await service.client.post(
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "slack", "target": "C0001"},
        headers=service.auth(),
    )
    assert response.status_code == 409  # Slack is off without SLACK_BOT_TOKEN and its secret
    assert "SLACK_BOT_TOKEN" in response.json()["error"]
    malformed = await service.client.post(
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "telegram", "token": "123:abc"},
        headers=service.auth(),
    )
    assert malformed.status_code == 422 and "@BotFather" in malformed.json()["error"]
    knowledge = await service.client.get("/api/v1/bots/faq-bot/knowledge", headers=service.auth())
    assert knowledge.status_code == 200 and knowledge.json() == []


async def test_undeploy_and_delete(service: Service) -> None:
    deployment = await service.live_web_bot()
    assert (await service.chat(deployment, "hi")).status_code == 200
    gone = await service.client.delete(f"/api/v1/deployments/{deployment}", headers=service.auth())
    assert gone.status_code == 204
    assert (await service.chat(deployment, "hi")).status_code == 404
    assert (await service.client.get(f"/chat/{deployment}")).status_code == 404
    deleted = await service.client.delete("/api/v1/bots/faq-bot", headers=service.auth())
    assert deleted.status_code == 204
    assert await service.call("GET", "/api/v1/bots") == []
    audit = await service.call("GET", "/api/v1/audit")
    assert [e["action"] for e in audit[:2]] == ["bot.delete", "undeploy"]


async def test_openapi_health_metrics_and_unknown_routes(service: Service) -> None:
    assert (await service.client.get("/healthz")).json() == {"status": "ok"}
    schema = (await service.client.get("/openapi.json")).json()
    assert "/api/v1/bots/{bot}/promote" in schema["paths"]
    assert "studio_turns_total" in (await service.client.get("/metrics")).text
    missing = await service.client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
