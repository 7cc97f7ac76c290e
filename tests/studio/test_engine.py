"""The engine as the runtime runs it (what the Slack and Telegram fronts will use): files,
stale buttons, and a promotion or rollback switching a live deployment without a restart."""

from __future__ import annotations

from typing import Any

from adapters.telegram.tokens import TOKEN_PREFIX, UnaskedTokens
from runtime.messages import FileRef, IncomingMessage
from studio.address import PULL_CHANNEL, studio_address
from tests.factories import Service


async def _message(service: Service, text: str = "", **fields: Any) -> IncomingMessage:
    """A message from the owner key's member, as a front hands it to the runtime."""
    team_id = (await service.app.state.core.ops.authenticate(service.key)).team_id
    return IncomingMessage(
        address=studio_address(PULL_CHANNEL, team_id, "api:owner"), text=text, **fields
    )


async def test_files_need_a_bot_and_a_front_that_can_read_them(service: Service) -> None:
    runtime = service.app.state.core.runtime
    reply = await runtime.answer(await _message(service, files=(FileRef(name="policy.pdf"),)))
    assert "Which bot should learn from this?" in reply.text
    await service.reply("/newbot faq-bot")
    await service.reply("/bots")  # the current bot is not what names the target here
    files = (FileRef(name="a.txt"), FileRef(name="b.txt"))
    reply = await runtime.answer(await _message(service, "for faq-bot", files=files))
    assert [m.text for m in reply.messages] == [
        "I cannot read files sent here; a.txt was not added.",
        "I cannot read files sent here; b.txt was not added.",
    ]


async def test_unknown_buttons_and_button_commands(service: Service) -> None:
    runtime = service.app.state.core.runtime
    assert "no longer valid" in (await runtime.answer(await _message(service, action="zap:1"))).text
    await service.reply("/newbot faq-bot")
    shown = await runtime.answer(await _message(service, action="run:/show faq-bot"))
    assert "faq-bot" in shown.text
    assert {"Model", "Staging", "Production"} <= {f.label for f in shown.messages[0].fields}


async def test_promotion_and_rollback_switch_a_live_deployment(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/set fallback First answer.")
    await service.reply("/promote")
    await service.say("/promote faq-bot production")
    await service.reply("yes")
    deployed = await service.reply("/deploy faq-bot web")
    deployment = deployed.split("/chat/")[1].split()[0].rstrip(".")
    assert (await service.chat(deployment, "hi")).json()["reply"] == "First answer."

    await service.reply("/set fallback Second answer.")
    await service.reply("/promote")
    await service.say("/promote faq-bot production")
    await service.reply("yes")
    assert (await service.chat(deployment, "hi")).json()["reply"] == "Second answer."

    await service.say("/rollback faq-bot production")
    assert "v1" in await service.reply("yes")
    assert (await service.chat(deployment, "hi")).json()["reply"] == "First answer."


async def test_an_action_only_a_plugin_answers_is_refused_without_it(service: Service) -> None:
    core = service.app.state.core
    forged = await _message(service, action="token::not-a-ciphertext")
    assert (await core.runtime.answer(forged)).text == "That button is no longer valid."
    core.studio.on_action[TOKEN_PREFIX] = UnaskedTokens(core.ops)  # the Telegram bot's, when on
    reply = await core.runtime.answer(forged)
    assert reply.text == "That token could not be read; nothing was deployed. Send it again."
