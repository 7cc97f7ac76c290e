"""`/memory` transcripts: lines sent to the Studio over `POST /api/v1/studio/messages`, replies
asserted, with end users stored as the runtime stores them."""

from __future__ import annotations

from tests.factories import Service
from tests.people import remembered, rows, talked


async def test_show_set_and_forget_with_confirmation(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await talked(service, "faq-bot", "telegram:12345")
    await remembered(service, "faq-bot", "telegram:12345", {"plan": "pro"}, channel="sandbox")

    shown = await service.reply("/memory faq-bot telegram:12345")
    assert shown == (
        "*faq-bot* remembers about telegram:12345:\n"
        "On sandbox (telegram:12345's /try):\n"
        "  plan: pro"
    )

    said = await service.reply("/memory faq-bot telegram:12345 set age 42")
    assert said == "*faq-bot* now remembers age: 42 about telegram:12345 (on telegram)."
    await service.reply("/memory telegram:12345 set vip true")  # the current bot
    await service.reply('/memory telegram:12345 set zip "02134"')
    await service.reply("/memory telegram:12345 set note Prefers email, not calls.")
    memory = await service.call("GET", "/api/v1/bots/faq-bot/participants/telegram:12345")
    telegram = next(m for m in memory["memory"] if m["channel"] == "telegram")
    assert telegram["values"] == {
        "age": 42,
        "vip": True,
        "zip": "02134",
        "note": "Prefers email, not calls.",
    }
    shown = await service.reply("/memory faq-bot 12345")
    assert "On telegram (telegram:12345):\n  age: 42\n  note: Prefers email" in shown
    assert "  vip: true\n  zip: 02134" in shown

    asked = await service.say("/memory faq-bot telegram:12345 forget")
    question = asked["messages"][0]
    assert question["text"].startswith(
        "Forget what *faq-bot* remembers about telegram:12345 (5 values: age, note, plan, vip, "
        "zip; on sandbox (telegram:12345's /try), telegram)? Their messages stay."
    )
    assert [b["label"] for b in question["buttons"]] == ["Confirm", "Cancel"]
    before = await rows(service)
    assert "Cancelled" in await service.reply("no")
    assert await rows(service) == before

    await service.say("/memory faq-bot telegram:12345 forget")
    done = await service.reply("yes")
    assert done == (
        "*faq-bot* forgot what it remembered about telegram:12345: age, note, plan, vip, zip "
        "(on sandbox (telegram:12345's /try), telegram). Their messages are kept."
    )
    after = await rows(service)
    assert after["memory"] == [] and after["messages"] == before["messages"]
    assert await service.reply("/memory faq-bot telegram:12345") == (
        "*faq-bot* remembers nothing about telegram:12345."
    )
    # nothing to forget: no question
    nothing = await service.say("/memory faq-bot telegram:12345 forget")
    assert nothing["reply"] == "*faq-bot* remembers nothing about telegram:12345."
    assert "nothing to confirm" in await service.reply("yes")

    history = await service.reply("/history faq-bot")
    assert "memory.set" in history and "memory.forget" in history
    assert "Prefers email" not in history


async def test_a_confirmed_forget_is_bound_to_the_bot_it_asked_about(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await remembered(service, "faq-bot", "web:abc", {"plan": "pro"})
    await service.say("/memory faq-bot web:abc forget")
    await service.call("DELETE", "/api/v1/bots/faq-bot")
    await service.import_bot("spacer-bot")  # SQLite would give the next bot the freed id
    await service.import_bot("faq-bot")  # another bot of the same name
    await remembered(service, "faq-bot", "web:abc", {"plan": "trial"})
    assert "changed since you were asked" in await service.reply("yes")
    shown = await service.reply("/memory faq-bot web:abc")
    assert "plan: trial" in shown


async def test_refusals_change_nothing(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await remembered(service, "faq-bot", "telegram:1", {"plan": "pro"})
    before = await rows(service)

    await service.reply("/bots", user="alice")  # alice joins as a viewer
    for line in (
        "/memory faq-bot telegram:1",
        "/memory faq-bot telegram:1 set plan free",
        "/memory faq-bot telegram:1 forget",
    ):
        refused = await service.reply(line, user="alice")
        assert "needs the editor role; you are a viewer" in refused
        assert "/role http:alice editor" in refused
    assert "nothing to confirm" in await service.reply("yes", user="alice")

    assert await service.reply("/memory faq-bot telegram:2") == (
        "No end user telegram:2 has talked to faq-bot."
    )
    assert await service.reply("/memory faq-bot telegram:2 forget") == (
        "No end user telegram:2 has talked to faq-bot."
    )
    bad_key = await service.reply("/memory faq-bot telegram:1 set Plan free")
    assert bad_key == (
        "'Plan' is not a memory key: use 1-40 of a-z, 0-9 and '_', starting with a letter"
    )
    assert "Did you mean 'faq-bot'" in await service.reply("/memory fqa-bot telegram:1")
    usage = await service.reply("/memory faq-bot telegram:1 wipe")
    assert "Usage: /memory BOT USER" in usage

    other = await service.app.state.core.ops.create_team("other")
    for line in ("/memory faq-bot telegram:1", "/memory faq-bot telegram:1 forget"):
        response = await service.client.post(
            "/api/v1/studio/messages", headers=service.auth(other.key), json={"text": line}
        )
        assert "No bot named 'faq-bot'" in response.json()["reply"]
    assert await rows(service) == before


async def test_help_explains_memory(service: Service) -> None:
    assert "/memory BOT USER" in await service.reply("/help")
    detail = await service.reply("/help memory")
    assert "/memory BOT USER set KEY VALUE" in detail and "/memory BOT USER forget" in detail
    assert "Asks for confirmation first" in detail
