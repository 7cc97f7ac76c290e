"""`/secret set NAME` in the terminal: the value is read with a prompt that does not echo, then
handed over sealed (in this process) or by REST (a running service); never typed as a line."""

from __future__ import annotations

import httpx

from adapters.terminal.chat import HttpLink, LocalLink, StudioLink, converse
from tests.factories import Service

VALUE = "sk-live-T3rminal"


async def _talk(link: StudioLink, lines: list[str], typed: str) -> tuple[str, list[str]]:
    prompts: list[str] = []

    def hidden(prompt: str) -> str:
        prompts.append(prompt)
        return typed

    written: list[str] = []
    feed = iter([*lines, ""])
    await converse(
        link, read=lambda: next(feed), write=written.append, interactive=False, hidden=hidden
    )
    return "".join(written), prompts


async def test_the_local_terminal_asks_without_echo(service: Service) -> None:
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    link = LocalLink(core, caller.team_id, "api:owner")
    out, prompts = await _talk(link, ["/secret set acme-crm\n"], VALUE)
    assert prompts == ["Value of acme-crm (not shown; Enter to cancel): "]
    assert "Secret *acme-crm* saved" in out and VALUE not in out
    assert await core.secrets.reveal(caller.team_id, "acme-crm") == VALUE

    out, _ = await _talk(link, ["/secret set other\n"], "")
    assert "Nothing was saved." in out
    assert [s["name"] for s in await service.call("GET", "/api/v1/secrets")] == ["acme-crm"]


async def test_the_terminal_of_a_running_service_sets_it_by_rest(service: Service) -> None:
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio.test", headers=service.auth()
    ) as client:
        out, prompts = await _talk(HttpLink(client), ["/secret set acme-crm\n", "/bots\n"], VALUE)
    assert len(prompts) == 1  # only after /secret set
    assert "Secret *acme-crm* saved" in out and VALUE not in out
    team = (await service.app.state.core.ops.authenticate(service.key)).team_id
    assert await service.app.state.core.secrets.reveal(team, "acme-crm") == VALUE


async def test_without_a_hidden_prompt_the_answer_says_how_to_set_it(service: Service) -> None:
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    written: list[str] = []
    feed = iter(["/secret set acme-crm\n", ""])
    link = LocalLink(core, caller.team_id, "api:owner")
    await converse(link, read=lambda: next(feed), write=written.append, interactive=False)
    assert "PUT /api/v1/secrets/acme-crm" in "".join(written)
    assert await service.call("GET", "/api/v1/secrets") == []
