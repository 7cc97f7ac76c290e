"""`POST /api/v1/bots/{bot}/try`: the Studio's `/try` over REST, in the same sandbox."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


async def test_rest_try_continues_the_studios_sandbox_conversation(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.import_bot(model="openai/fake-model")
        llm.reply("Five days.")
        first = await service.call("POST", "/api/v1/bots/faq-bot/try", json={"text": "Refunds?"})
        assert first == {
            "bot": "faq-bot",
            "reply": "Five days.",
            "model_error": None,
            "new_conversation": True,
            "tool_calls": [],
        }
        llm.reply("By card too.")
        assert "By card too." in await service.reply("/try faq-bot And by card?")
        sent = [(m["role"], m["content"]) for m in llm.calls[-1].messages][1:]
        assert sent == [("user", "Refunds?"), ("assistant", "Five days."), ("user", "And by card?")]

        llm.reply("Hello again.")
        fresh = await service.call(
            "POST", "/api/v1/bots/faq-bot/try", json={"text": "Hi", "new": True}
        )
        assert fresh["new_conversation"] is True
        assert [m["role"] for m in llm.calls[-1].messages] == ["system", "user"]

        llm.fail(401, times=1)
        failed = await service.call("POST", "/api/v1/bots/faq-bot/try", json={"text": "Still?"})
        assert failed["new_conversation"] is False and "auth" in failed["model_error"]
        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats")
        assert stats["turns"] == 0  # sandbox conversations are never counted


async def test_try_refuses_viewers_unknown_bots_and_empty_text(service: Service) -> None:
    await service.import_bot()
    viewer = await service.app.state.core.ops.create_api_key(team="local", role="viewer", name="v")
    cases = [
        ({"text": "hi"}, "faq-bot", viewer.key, 403, "Trying a draft needs the editor role"),
        ({"text": "hi"}, "fqa-bot", None, 404, "Did you mean 'faq-bot'?"),
        ({"text": "   "}, "faq-bot", None, 422, "text: "),
        ({"text": "x" * 4001}, "faq-bot", None, 422, "text: "),
        ({}, "faq-bot", None, 422, "text: Field required"),
        ({"text": f"use {TOKEN}"}, "faq-bot", None, 422, "That looks like a bot token"),
        ({"text": "a\x00b"}, "faq-bot", None, 400, "NUL character"),
    ]
    for body, bot, key, status, message in cases:
        response = await service.client.post(
            f"/api/v1/bots/{bot}/try", json=body, headers=service.auth(key)
        )
        assert response.status_code == status, response.text
        assert list(response.json()) == ["error"] and message in response.json()["error"]
    conversations = await service.call("GET", "/api/v1/bots/faq-bot/conversations")
    assert conversations == []
