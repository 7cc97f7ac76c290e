"""`/secret` in chat (the pull channel the web console and the terminal use): the value is asked
for privately and handed over sealed, never typed into a command or echoed; roles apply."""

from __future__ import annotations

from typing import Any

from runtime.messages import IncomingMessage
from studio.address import PULL_CHANNEL, TELEGRAM_STUDIO, studio_address
from studio.presenters import render_text
from studio.replies import SECRET_FORM_PREFIX, secret_action, secret_form
from studio.roles import Role
from tests.factories import Service, spec_data

VALUE = "sk-live-T3stV4lue"
TOOL = {
    "name": "crm",
    "url": "https://crm.example.com/openapi.json",
    "auth": "acme-crm",
    "operations": [{"function": "getOrder", "id": "getOrder", "method": "GET", "path": "/o"}],
}


async def _form(service: Service, name: str = "acme-crm") -> str:
    """`/secret set NAME`: the answer's private-form action."""
    said = await service.say(f"/secret set {name}")
    [message] = said["messages"]
    assert f"PUT /api/v1/secrets/{name}" in message["text"] and "privately" in message["text"]
    [button] = message["buttons"]
    assert button["action"].startswith(SECRET_FORM_PREFIX)
    return str(button["action"])


async def _hand_over(service: Service, form: str, value: str, *, sealed: bool = True) -> str:
    """What a front that takes the value privately hands the Studio (the terminal, in-process)."""
    core = service.app.state.core
    caller = await core.ops.authenticate(service.key)
    found = secret_form(form)
    assert found is not None
    action = secret_action(core.cipher, value, request=found[0])
    if not sealed:
        action = action.rsplit(":", 1)[0] + ":not-sealed-by-this-service"
    message = IncomingMessage(
        address=studio_address(PULL_CHANNEL, caller.team_id, caller.identity), action=action
    )
    reply = await core.runtime.answer(message)
    return "\n".join(render_text(m) for m in reply.messages)


async def _secrets(service: Service) -> list[Any]:
    return await service.call("GET", "/api/v1/secrets")  # type: ignore[no-any-return]


async def test_a_value_handed_over_privately_is_saved_and_never_echoed(service: Service) -> None:
    vault = service.app.state.core.secrets
    team = (await service.app.state.core.ops.authenticate(service.key)).team_id
    form = await _form(service)
    saved = await _hand_over(service, form, VALUE)
    assert "Secret *acme-crm* saved" in saved and VALUE not in saved
    assert await vault.reveal(team, "acme-crm") == VALUE
    again = await _hand_over(service, form, VALUE + "x")  # a request is answered once
    assert "No secret was waiting" in again
    assert await vault.reveal(team, "acme-crm") == VALUE

    replaced = await _hand_over(service, await _form(service), "new-value")
    assert "saved (it replaces the old value)" in replaced


async def test_a_bad_value_keeps_the_request_open(service: Service) -> None:
    form = await _form(service)
    assert "only visible ASCII characters" in await _hand_over(service, form, "two\nlines")
    assert "is too long" in await _hand_over(service, form, "x" * 4097)
    assert "could not be read" in await _hand_over(service, form, VALUE, sealed=False)
    assert await _secrets(service) == []
    assert "saved" in await _hand_over(service, form, VALUE)
    assert [s["name"] for s in await _secrets(service)] == ["acme-crm"]


async def test_a_command_instead_of_the_value_cancels_the_request(service: Service) -> None:
    form = await _form(service)
    cancelled = await _hand_over(service, form, "/cancel")
    assert "Cancelled: no secret was saved" in cancelled
    assert "Cancelled" in await _hand_over(service, await _form(service), "/bots")
    assert "No secret was waiting" in await _hand_over(service, form, VALUE)
    assert await _secrets(service) == []


async def test_the_form_button_on_a_front_without_forms_points_to_rest(service: Service) -> None:
    form = await _form(service)
    clicked = await service.say(action=form)
    assert "PUT /api/v1/secrets/acme-crm" in clicked["reply"]
    assert await _secrets(service) == []


async def test_a_value_typed_into_the_command_is_refused_and_not_echoed(service: Service) -> None:
    reply = await service.reply(f"/secret set acme-crm {VALUE}")
    assert "Never type a secret's value in a chat" in reply and VALUE not in reply
    reply = await service.reply(f"/secret frobnicate {VALUE}")
    assert "/secret set NAME" in reply and VALUE not in reply
    reply = await service.reply("/secret set Not-A-Name")
    assert "not a secret name" in reply and "Not-A-Name" not in reply
    assert await _secrets(service) == []


async def test_list_and_remove_name_the_bots_whose_tools_use_a_secret(service: Service) -> None:
    assert "no secrets yet" in await service.reply("/secret list")
    await service.call("PUT", "/api/v1/secrets/acme-crm", json={"value": VALUE})
    await service.call("PUT", "/api/v1/secrets/unused", json={"value": VALUE})
    await service.call("POST", "/api/v1/bots/import", json=spec_data("faq-bot", tools=[TOOL]))
    listed = await service.reply("list our secrets")
    assert "acme-crm: set " in listed and "by api:owner · used by faq-bot" in listed
    assert "unused:   set " in listed and "no bot's tools use it" in listed
    assert VALUE not in listed
    removed = await service.reply("/secret remove acme-crm")
    assert "Removed the secret *acme-crm*" in removed
    assert "faq-bot" in removed and "refused" in removed
    assert "There is no secret called acme-crm" in await service.reply("/secret remove acme-crm")
    assert await service.reply("delete the secret unused") == "Removed the secret *unused*."


async def test_viewers_see_nothing_editors_list_admins_change(service: Service) -> None:
    await service.call("PUT", "/api/v1/secrets/acme-crm", json={"value": VALUE})
    await service.reply("/bots", user="bob")  # bob joins as a viewer
    assert "needs the editor role" in await service.reply("/secret list", user="bob")
    await service.reply("/role http:bob editor")
    assert "acme-crm" in await service.reply("/secret list", user="bob")
    for command in ("/secret set other", "/secret remove acme-crm"):
        assert "needs the admin role" in await service.reply(command, user="bob")
    await service.reply("/role http:bob admin")
    assert "privately" in await service.reply("set the secret other", user="bob")
    assert "Removed" in await service.reply("/secret remove acme-crm", user="bob")


async def test_telegram_asks_for_a_value_only_in_a_direct_message(service: Service) -> None:
    core = service.app.state.core
    team = (await core.ops.authenticate(service.key)).team_id
    await core.studio.members.admit(team, "telegram:7", Role.ADMIN, actor="test")

    async def said(thread: str) -> str:
        address = studio_address(TELEGRAM_STUDIO, team, "telegram:7", thread=thread)
        reply = await core.runtime.answer(
            IncomingMessage(address=address, text="/secret set acme-crm")
        )
        return "\n".join(render_text(m) for m in reply.messages)

    assert "only in a direct message" in await said("-100200300")  # a group chat
    assert "as your next message" in await said("7")  # the member's own chat
