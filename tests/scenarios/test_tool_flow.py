"""A bot that calls the team's service: a secret set by REST, an OpenAPI tool added by chatting
with the Studio, tried (the tool calls shown), promoted and answering end users on the web with
what the tool found. A tool that changes things runs only when allowed; the secret's value is
never stored, logged or shown (the database file and the logs are searched for it)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.fakes.openapi import FakeOpenApi

if TYPE_CHECKING:
    from tests.fakes.mcp import FakeMcp  # the SDK's import (~3 s) only with the fixture

pytestmark = pytest.mark.usefixtures("litellm_imported", "no_provider_keys")
SECRET = "crm-key-7f3a9b2c-do-not-leak"
MODEL = "openai/fake-model"


@pytest.fixture
async def service(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[Service]:
    settings = service_settings(tmp_path, llm_api_base=llm.base_url, allow_private_urls=True)
    async with running_service(settings) as running:
        yield running


async def shop_bot(service: Service, openapi: FakeOpenApi, *options: str) -> str:
    """The bot with the service's getOrder and createTicket, credentials from the secret."""
    await service.call("PUT", "/api/v1/secrets/acme-crm", json={"value": SECRET})
    await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot", "model": MODEL})
    document = f"{openapi.url}/openapi.json"
    added = await service.reply(
        f"/tool shop-bot add {document} getOrder createTicket --auth acme-crm {' '.join(options)}"
    )
    assert openapi.paths() == ["/openapi.json"]  # read once, without the secret
    assert "authorization" not in openapi.requests[0].headers
    openapi.reset()
    return added


async def test_a_bot_looks_up_an_order_and_answers_end_users_with_its_status(
    service: Service, openapi: FakeOpenApi, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    added = await shop_bot(service, openapi)
    assert "Added the tool with 2 operations on *shop-bot*'s draft" in added
    assert "`getOrder` (reads)" in added and "`createTicket` (changes things: not allowed)" in added
    listed = await service.reply("/tool shop-bot list")
    assert "*tool* — OpenAPI at 127.0.0.1" in listed
    assert "secret `acme-crm`" in listed

    llm.tool_calls(("getOrder", {"id": "B2"}))
    llm.reply("Order B2 has shipped.")
    tried = await service.reply("/try shop-bot where is my order B2?")
    assert tried.startswith("*shop-bot* (draft): Order B2 has shipped.")
    assert '• `getOrder` {"id": "B2"} → ok: HTTP 200' in tried
    (lookup,) = openapi.requests
    assert (lookup.method, lookup.path) == ("GET", "/orders/B2")
    assert lookup.headers["authorization"] == f"Bearer {SECRET}"
    given = next(m for m in llm.calls[-1].messages if m["role"] == "tool")["content"]
    assert "shipped" in given and SECRET not in json.dumps(llm.calls[-1].body)

    await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": "staging"})
    await service.call("POST", "/api/v1/bots/shop-bot/promote", json={"to": "production"})
    web = await service.call("POST", "/api/v1/bots/shop-bot/deployments", json={"channel": "web"})
    llm.tool_calls(("getOrder", {"id": "A1"}))
    llm.reply("Order A1 is still open.")
    answered = (await service.chat(web["id"], "and order A1?")).json()
    assert answered["reply"] == "Order A1 is still open."
    assert openapi.paths()[-1] == "/orders/A1"

    shown = await service.call("GET", "/api/v1/bots/shop-bot/export")
    audit = await service.call("GET", "/api/v1/audit")
    everything = [tried, listed, added, json.dumps(audit), shown, caplog.text]
    assert not any(SECRET in text for text in everything)
    database = Path(service.settings.database_url.split("///", 1)[1])
    for stored in database.parent.glob(database.name + "*"):  # the file, its WAL
        assert SECRET.encode() not in stored.read_bytes()


async def test_a_change_the_bot_was_not_allowed_never_reaches_the_service(
    service: Service, openapi: FakeOpenApi, llm: FakeLLM
) -> None:
    await shop_bot(service, openapi)
    llm.tool_calls(("createTicket", {"subject": "Refund", "priority": 2}))
    llm.reply("I can't open tickets myself.")
    tried = await service.reply("/try shop-bot open a ticket for my refund")
    assert "I can't open tickets myself." in tried
    assert "`createTicket`" in tried and "→ refused: 'createTicket' changes something" in tried
    assert openapi.requests == []


async def test_allowed_changes_run(service: Service, openapi: FakeOpenApi, llm: FakeLLM) -> None:
    added = await shop_bot(service, openapi, "--allow-changes")
    assert "`createTicket` (changes things: allowed)" in added
    llm.tool_calls(("createTicket", {"subject": "Refund", "priority": 2}))
    llm.reply("Ticket opened.")
    tried = await service.reply("/try shop-bot open a ticket")
    assert "→ ok: HTTP 201" in tried or "→ ok: HTTP 200" in tried
    (ticket,) = openapi.requests
    assert (ticket.method, ticket.path) == ("POST", "/tickets")
    assert ticket.json == {"subject": "Refund", "priority": 2}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("/tool shop-bot add {url}/openapi.json getOrders", "Nothing was changed: "),
        ("/tool shop-bot add {url}/broken.yaml", "Nothing was changed: "),
        ("/tool shop-bot add {url}/swagger.json getOrder", "Nothing was changed: "),
        ("/tool shop-bot add {url}/openapi.json getOrder --auth nope", "/secret set nope first"),
        ("/tool shop-bot remove nothing", "shop-bot has no tool 'nothing' (its tools: none)"),
    ],
)
async def test_bad_tools_are_refused_and_change_nothing(
    service: Service, openapi: FakeOpenApi, line: str, says: str
) -> None:
    await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot", "model": MODEL})
    before = await service.call("GET", "/api/v1/bots/shop-bot")
    answer = await service.reply(line.format(url=openapi.url))
    assert says in answer, answer
    assert await service.call("GET", "/api/v1/bots/shop-bot") == before


async def test_a_tool_step_without_the_arguments_its_operation_needs_is_refused(
    service: Service, openapi: FakeOpenApi
) -> None:
    await shop_bot(service, openapi)
    before = await service.call("GET", "/api/v1/bots/shop-bot")
    for line, says in [
        ("/flow shop-bot add tool lookup tool=getOrder", "getOrder needs 'id'"),
        (
            '/flow shop-bot add tool lookup tool=getOrder arguments={"id": "A1", "idd": "A1"}',
            "getOrder takes no 'idd' (it takes 'id')",
        ),
    ]:
        answer = await service.reply(line)
        assert answer == f"Nothing was changed: step 'lookup': arguments: {says}.", answer
    assert await service.call("GET", "/api/v1/bots/shop-bot") == before
    added = await service.reply(
        '/flow shop-bot add tool lookup tool=getOrder arguments={"id": "{{ input }}"}'
    )
    assert added.startswith("Added tool `lookup`"), added


async def test_a_private_address_is_refused_without_the_setting(
    tmp_path: Path, openapi: FakeOpenApi
) -> None:
    async with running_service(service_settings(tmp_path)) as service:
        await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot"})
        answer = await service.reply(f"/tool shop-bot add {openapi.url}/openapi.json getOrder")
    assert "private address" in answer and answer.startswith("Nothing was changed")
    assert openapi.requests == []


async def test_an_mcp_tool_added_by_chat_answers_through_the_same_loop(
    service: Service, mcp_server: FakeMcp, llm: FakeLLM
) -> None:
    await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot", "model": MODEL})
    added = await service.reply(f"/tool shop-bot add-mcp {mcp_server.url} get_weather create_note")
    assert (
        "`get_weather` (reads)" in added and "`create_note` (changes things: not allowed)" in added
    )
    assert "MCP at 127.0.0.1" in await service.reply("/tool shop-bot list")

    llm.tool_calls(("get_weather", {"city": "Lisbon"}), ("create_note", {"text": "hi"}))
    llm.reply("Sunny in Lisbon.")
    tried = await service.reply("/try shop-bot weather in Lisbon?")
    assert tried.startswith("*shop-bot* (draft): Sunny in Lisbon.")
    assert '• `get_weather` {"city": "Lisbon"} → ok' in tried
    assert "• `create_note`" in tried and "→ refused: 'create_note' changes something" in tried
    assert [call.name for call in mcp_server.calls] == ["get_weather"]
    results = [m["content"] for m in llm.calls[-1].messages if m["role"] == "tool"]
    assert "Lisbon" in results[0] and 'status="refused"' in results[1]


async def test_an_mcp_server_that_is_down_is_said_plainly(service: Service) -> None:
    await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot", "model": MODEL})
    answer = await service.reply("/tool shop-bot add-mcp http://127.0.0.1:9/mcp")
    assert answer.startswith("Nothing was changed: http://127.0.0.1:9/mcp could not be reached")
    assert "Tools" not in await service.reply("/show shop-bot")


async def test_only_admins_send_a_team_secret_to_a_tool(
    service: Service, openapi: FakeOpenApi
) -> None:
    await shop_bot(service, openapi)  # by the owner
    made = await service.call("POST", "/api/v1/keys", json={"name": "ed", "role": "editor"})
    editor = made["key"]
    draft = (await service.call("GET", "/api/v1/bots/shop-bot"))["draft"]
    moved = [{**draft["tools"][0], "url": "https://elsewhere.example/openapi.json"}]
    moved[0].pop("base_url")
    for attempt in (
        service.client.patch(
            "/api/v1/bots/shop-bot", json={"tools": moved}, headers=service.auth(editor)
        ),
        service.client.post(
            "/api/v1/bots/import",
            json={"name": "copy-bot", "model": MODEL, "tools": draft["tools"]},
            headers=service.auth(editor),
        ),
    ):
        response = await attempt
        assert response.status_code == 403, response.text
        assert response.json()["error"].startswith(
            "Giving a tool a team secret needs the admin role"
        )
    assert (await service.call("GET", "/api/v1/bots/shop-bot"))["draft"]["tools"] == draft["tools"]
    # An editor may still change what does not send the secret elsewhere.
    described = [{**draft["tools"][0], "description": "The CRM"}]
    edited = await service.client.patch(
        "/api/v1/bots/shop-bot", json={"tools": described}, headers=service.auth(editor)
    )
    assert edited.status_code == 200, edited.text


async def test_tools_by_rest(service: Service, openapi: FakeOpenApi) -> None:
    await service.call("PUT", "/api/v1/secrets/acme-crm", json={"value": SECRET})
    await service.call("POST", "/api/v1/bots/import", json={"name": "shop-bot", "model": MODEL})
    body = {
        "url": f"{openapi.url}/openapi.json",
        "operations": ["getOrder", "createTicket"],
        "auth": "acme-crm",
        "allow_changes": True,
        "name": "crm",
    }
    added = await service.call("POST", "/api/v1/bots/shop-bot/tools", json=body)
    assert (added["replaced"], added["tool"]["name"], added["tool"]["auth"]) == (
        False,
        "crm",
        "acme-crm",
    )
    allowed = [op.get("allowed", False) for op in added["tool"]["operations"]]
    assert allowed == [False, True]  # the GET needs no leave; the POST was allowed
    listed = await service.call("GET", "/api/v1/bots/shop-bot/tools")
    assert [t["name"] for t in listed["tools"]] == ["crm"] and SECRET not in json.dumps(listed)

    bad = await service.client.post(
        "/api/v1/bots/shop-bot/tools",
        json={**body, "operations": ["nope"]},
        headers=service.auth(),
    )
    assert bad.status_code == 422 and bad.json()["error"].startswith("Nothing was changed:")
    viewer = (await service.call("POST", "/api/v1/keys", json={"name": "v", "role": "viewer"}))[
        "key"
    ]
    refused = await service.client.delete(
        "/api/v1/bots/shop-bot/tools/crm", headers=service.auth(viewer)
    )
    assert refused.status_code == 403
    gone = await service.client.delete("/api/v1/bots/shop-bot/tools/crm", headers=service.auth())
    assert gone.status_code == 204
    missing = await service.client.delete("/api/v1/bots/shop-bot/tools/crm", headers=service.auth())
    assert missing.status_code == 404
    assert (await service.call("GET", "/api/v1/bots/shop-bot/tools"))["tools"] == []


async def test_an_editor_may_reimport_a_bot_whose_tool_uses_a_secret(
    service: Service, openapi: FakeOpenApi
) -> None:
    await shop_bot(service, openapi)  # by the owner
    made = await service.call("POST", "/api/v1/keys", json={"name": "ed", "role": "editor"})
    exported = await service.call("GET", "/api/v1/bots/shop-bot/export")
    again = await service.client.post(
        "/api/v1/bots/import?replace=true",
        content=exported.replace("prompt:", "prompt: Be kind.\n#", 1),
        headers={**service.auth(made["key"]), "Content-Type": "application/yaml"},
    )
    assert again.status_code == 201, again.text
    assert again.json()["draft"]["prompt"] == "Be kind."
