"""A new user's dead ends (issue 12): each refusal is one line that names the fix, and changes
nothing; nothing a spec holds is silently ignored or stored when it should not be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders.spec import MAX_TESTS
from tests.conftest import running_service, service_settings
from tests.factories import Service, spec_data, spec_yaml
from tests.fakes.llm import FakeLLM

TELEGRAM_TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"
SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
TOKEN_REFUSAL = "that looks like a bot token: secrets are never stored in a bot's text"


async def _unchanged(service: Service, bot: dict[str, Any], name: str = "faq-bot") -> None:
    now = await service.call("GET", f"/api/v1/bots/{name}")
    assert (now["revision"], now["draft"]) == (bot["revision"], bot["draft"])


# -- import -----------------------------------------------------------------------------------


async def test_an_imported_spec_without_a_model_gets_the_default_model(
    tmp_path: Path, llm: FakeLLM
) -> None:
    settings = service_settings(
        tmp_path, default_model="openai/fake-model", llm_api_base=llm.base_url
    )
    async with running_service(settings) as service:
        created = await service.call("POST", "/api/v1/bots", json={"name": "made-bot"})
        imported = await service.import_bot()
        assert imported["draft"]["model"] == created["draft"]["model"] == "openai/fake-model"
        yaml_import = await service.client.post(
            "/api/v1/bots/import",
            content=spec_yaml("yaml-bot"),
            headers={**service.auth(), "content-type": "application/yaml"},
        )
        assert yaml_import.json()["draft"]["model"] == "openai/fake-model"
        named = await service.import_bot("own-bot", model="offline")
        assert named["draft"]["model"] == "offline"


async def test_a_default_model_is_given_unchecked_as_to_a_created_bot(tmp_path: Path) -> None:
    async with running_service(service_settings(tmp_path, default_model="gpt-4o-mini")) as service:
        created = await service.call("POST", "/api/v1/bots", json={"name": "made-bot"})
        imported = await service.import_bot()
        assert imported["draft"]["model"] == created["draft"]["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("gpt-4o-mini", "model: openai needs OPENAI_API_KEY"),
        ("nosuchvendor/whatever-model", "model: 'nosuchvendor/whatever-model' is not a model"),
    ],
)
async def test_an_imported_model_is_checked_like_set_model(
    service: Service, model: str, says: str
) -> None:
    response = await service.client.post(
        "/api/v1/bots/import", json=spec_data(model=model), headers=service.auth()
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith(says)
    assert await service.call("GET", "/api/v1/bots") == []
    await service.reply("/newbot faq-bot")
    assert (await service.reply(f"/set faq-bot model {model}")).startswith(says)


# -- bot tokens ------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TELEGRAM_TOKEN, SLACK_TOKEN, "xapp-1-A0123-4567-abcdef0123"])
@pytest.mark.parametrize("field", ["prompt", "greeting", "fallback", "description"])
async def test_a_token_in_a_bots_text_is_refused_everywhere(
    service: Service, field: str, token: str
) -> None:
    text = f"Use {token} for the API."
    imported = await service.client.post(
        "/api/v1/bots/import", json=spec_data(**{field: text}), headers=service.auth()
    )
    assert imported.status_code == 422
    assert imported.json()["error"] == f"{field}: {TOKEN_REFUSAL}"
    bot = await service.import_bot()
    patched = await service.client.patch(
        "/api/v1/bots/faq-bot", json={field: text}, headers=service.auth()
    )
    assert patched.status_code == 422 and TOKEN_REFUSAL in patched.json()["error"]
    said = await service.reply(f"/set faq-bot {field} {text}")
    assert said.startswith("That looks like a bot token") and token not in said
    await _unchanged(service, bot)
    audit = await service.call("GET", "/api/v1/audit")
    assert token not in str(audit)


async def test_a_token_in_a_test_or_knowledge_is_refused(service: Service) -> None:
    bot = await service.import_bot()
    expect = {"kind": "contains", "value": "x"}
    case = {"turns": [f"my token is {TELEGRAM_TOKEN}"], "expect": expect}
    added = await service.client.post(
        "/api/v1/bots/faq-bot/tests", json=case, headers=service.auth()
    )
    assert added.status_code == 422 and added.json()["error"] == f"tests: {TOKEN_REFUSAL}"
    note = await service.client.post(
        "/api/v1/bots/faq-bot/knowledge",
        json={"text": f"Deploy with {SLACK_TOKEN} please"},
        headers=service.auth(),
    )
    assert note.status_code == 422 and TOKEN_REFUSAL in note.json()["error"]
    file = await service.client.post(
        "/api/v1/bots/faq-bot/knowledge?name=setup.md",
        content=f"# Setup\n\nThe token is {TELEGRAM_TOKEN}.\n".encode(),
        headers={**service.auth(), "content-type": "text/markdown"},
    )
    assert file.status_code == 422 and file.json()["error"] == f"setup.md: {TOKEN_REFUSAL}"
    await _unchanged(service, bot)
    assert await service.call("GET", "/api/v1/bots/faq-bot/knowledge") == []


# -- spec limits -----------------------------------------------------------------------------


async def test_spec_limits_hold_for_patch_tests_and_import(service: Service) -> None:
    bot = await service.import_bot()
    case = {"turns": ["hi"], "expect": {"kind": "contains", "value": "x"}}
    too_many = {"tests": [case] * (MAX_TESTS + 1)}
    huge_turn = {"tests": [{**case, "turns": ["x" * 100_000]}]}  # bigger bodies: 413 first
    huge_term = {"guardrails": {"blocked_terms": ["x" * 100_000]}}
    for body, says in [
        (too_many, f"tests: has too many items (at most {MAX_TESTS})"),
        (huge_turn, "tests[0].turns[0]: is too long (at most 4000 characters)"),
        (huge_term, "guardrails.blocked_terms[0]: is too long (at most 200 characters)"),
    ]:
        patched = await service.client.patch(
            "/api/v1/bots/faq-bot", json=body, headers=service.auth()
        )
        assert patched.status_code == 422 and patched.json()["error"] == says
        imported = await service.client.post(
            "/api/v1/bots/import?replace=true", json=spec_data(**body), headers=service.auth()
        )
        assert imported.status_code == 422 and imported.json()["error"] == says
    route = await service.client.post(
        "/api/v1/bots/faq-bot/tests", json=huge_turn["tests"][0], headers=service.auth()
    )
    assert route.status_code == 422
    await service.call("PATCH", "/api/v1/bots/faq-bot", json={"tests": [case] * MAX_TESTS})
    one_more = await service.client.post(
        "/api/v1/bots/faq-bot/tests", json=case, headers=service.auth()
    )
    assert one_more.status_code == 422 and "at most 500" in one_more.json()["error"]
    now = await service.call("GET", "/api/v1/bots/faq-bot")
    assert now["revision"] == bot["revision"] + 1 and len(now["draft"]["tests"]) == MAX_TESTS


# -- versions beyond 64 bits -------------------------------------------------------------------


async def test_huge_version_numbers_are_one_line_never_a_500(service: Service) -> None:
    huge = "99999999999999999999999"
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.say("/promote faq-bot production")
    await service.reply("yes")
    assert "version numbers go from v1 to" in await service.reply(f"/diff faq-bot v{huge[:15]}")
    assert "vA is too long" in await service.reply(f"/diff faq-bot v{huge} draft")
    rolled = await service.reply(f"/rollback faq-bot production v{huge}")
    assert rolled.startswith("vN must be at most 2147483647")
    for version in (int(huge), 2**63, 2**31, 0, -1):
        response = await service.client.post(
            "/api/v1/bots/faq-bot/rollback",
            json={"env": "production", "version": version},
            headers=service.auth(),
        )
        assert response.status_code == 422, (version, response.text)
        refusal = response.json()["error"]  # the request model bounds it, else the operation
        assert refusal.startswith(("version: Input should be", "no such version")), refusal
        assert "\n" not in refusal
    for ref in (f"v{huge}", "9" * 5000, "²"):
        response = await service.client.get(
            "/api/v1/bots/faq-bot/diff", params={"a": ref}, headers=service.auth()
        )
        assert response.status_code == 422, (ref[:20], response.text)


# -- knowledge urls --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://files.example.com/a.txt", "javascript:alert(1)"]
)
async def test_a_knowledge_url_that_is_not_http_is_refused(service: Service, url: str) -> None:
    bot = await service.import_bot()
    response = await service.client.post(
        "/api/v1/bots/faq-bot/knowledge", json={"url": url}, headers=service.auth()
    )
    assert response.status_code == 422
    assert response.json()["error"].startswith("only http:// and https:// links can be added")
    said = await service.reply(f"/knowledge faq-bot add {url}")
    assert said.startswith("only http:// and https:// links can be added")
    await _unchanged(service, bot)
    assert await service.call("GET", "/api/v1/bots/faq-bot/knowledge") == []


# -- the Studio's dead ends ----------------------------------------------------------------------


async def test_a_near_miss_bot_name_is_not_sent_to_the_last_bot(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/newbot sales-bot")  # the last bot talked about
    for line in ("/try fqa-bot how do refunds work?", "try fqa-bot: hello"):
        assert await service.reply(line) == "No bot named 'fqa-bot'. Did you mean 'faq-bot'?"
    said = await service.reply("/knowledge fqa-bot add Refunds take 5 days.")
    assert said == "No bot named 'fqa-bot'. Did you mean 'faq-bot'?"
    assert "(draft)" in await service.reply("/try refunds please")  # a message, to sales-bot


async def test_a_member_refused_for_their_role_is_told_who_can_change_it(
    service: Service,
) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("hello", user="alice")  # joins as a viewer
    refused = await service.reply("/try faq-bot hi", user="alice")
    assert refused == (
        "Trying a draft needs the editor role; you are a viewer. An owner or admin can change "
        "that with `/role http:alice editor`."
    )
    assert "is now editor" in await service.reply("/role http:alice editor")
    assert "(draft)" in await service.reply("/try faq-bot hi", user="alice")
    key = (
        await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    ).key
    response = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"temperature": 0.1}, headers=service.auth(key)
    )
    assert response.status_code == 403
    assert "apikey create --team local --role editor" in response.json()["error"]


async def test_a_fresh_offline_bot_says_how_to_make_it_answer(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    said = await service.reply("/try faq-bot hello")
    assert said.startswith("*faq-bot* (draft): I can't answer that yet.")
    assert "`/knowledge faq-bot add TEXT|URL`" in said and "`/set faq-bot model" in said
    live = await service.live_web_bot("end-bot")
    assert (await service.chat(live, "hello")).json()["reply"] == "I can't answer that yet."


async def test_a_channel_that_is_not_configured_names_its_settings(service: Service) -> None:
    await service.live_web_bot()
    response = await service.client.post(
        "/api/v1/bots/faq-bot/deployments",
        json={"channel": "slack", "target": "C0001"},
        headers=service.auth(),
    )
    says = "Slack is not configured here: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET and restart."
    assert (response.status_code, response.json()["error"]) == (409, says)
    assert await service.reply("/deploy faq-bot slack #general") == says
    assert await service.call("GET", "/api/v1/deployments") != []  # the web one only
    assert len(await service.call("GET", "/api/v1/deployments")) == 1


async def test_half_configured_slack_names_the_missing_setting(tmp_path: Path) -> None:
    settings = service_settings(tmp_path, slack_bot_token="xoxb-only-the-token-here")
    async with running_service(settings) as service:
        await service.live_web_bot()
        response = await service.client.post(
            "/api/v1/bots/faq-bot/deployments",
            json={"channel": "slack", "target": "C0001"},
            headers=service.auth(),
        )
        assert response.status_code == 409
        assert response.json()["error"] == (
            "Slack is not configured here: set SLACK_SIGNING_SECRET and restart."
        )
