"""Guardrails and budgets on live traffic: a web deployment answered by the service's turn engine
with the guard steps `main.py` puts in place, the fake LLM as the provider (priced as
gpt-4o-mini)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import col, select

from runtime.turn.budget import OVER_BUDGET_REPLY, TOO_FAST_REPLY
from runtime.turn.guardrails import BLOCKED_REPLY
from storage.tables import Message
from tests.conftest import running_service, service_settings
from tests.fakes.llm import FakeLLM


async def stored(core: Any) -> list[tuple[str, str, str | None]]:
    async with core.db.read() as session:
        rows = (await session.exec(select(Message).order_by(col(Message.id)))).all()
    return [(row.role, row.text, row.error) for row in rows]


async def test_guardrails_mask_refuse_and_limit_live_turns(tmp_path: Path, llm: FakeLLM) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        core: Any = service.app.state.core
        deployment = await service.live_web_bot(
            model="openai/fake-model",
            guardrails={"pii": True, "blocked_terms": ["password"]},
            budget={"per_user_per_minute": 2},
        )
        first = (await service.chat(deployment, "I'm ann@example.com")).json()
        session = first["session"]
        assert first["reply"] == "echo: I'm [email]"
        refused = await service.chat(deployment, "my Password is 4111 1111 1111 1111", session)
        assert refused.json()["reply"] == BLOCKED_REPLY
        assert len(llm.calls) == 1
        second = await service.chat(deployment, "and then?", session)
        assert second.json()["reply"] == "echo: and then?"
        history = [(m["role"], m["content"]) for m in llm.calls[-1].messages[1:]]
        assert history == [
            ("user", "I'm [email]"),
            ("assistant", "echo: I'm [email]"),
            ("user", "and then?"),
        ]
        too_fast = await service.chat(deployment, "hello again", session)
        assert too_fast.json()["reply"] == TOO_FAST_REPLY
        assert len(llm.calls) == 2

        assert await stored(core) == [
            ("user", "I'm [email]", None),
            ("assistant", "echo: I'm [email]", None),
            ("user", "my Password is [card]", "blocked: blocked_term"),
            ("assistant", BLOCKED_REPLY, "blocked: blocked_term"),
            ("user", "and then?", None),
            ("assistant", "echo: and then?", None),
            ("user", "hello again", "blocked: rate_limit"),
            ("assistant", TOO_FAST_REPLY, "blocked: rate_limit"),
        ]
        stats = await service.call("GET", "/api/v1/bots/faq-bot/stats?period=24h")
        assert (stats["turns"], stats["errors"], stats["blocked"]) == (4, 0, 2)
        assert "Blocked:         2" in await service.reply("/stats faq-bot")


async def test_a_monthly_budget_stops_the_bot_and_tells_the_owner(
    tmp_path: Path, llm: FakeLLM
) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.reply("/bots")  # the owner talks to the Studio (the web console)
        # gpt-4o-mini's price: 1,000 + 1,000 tokens cost $0.00075 a turn
        deployment = await service.live_web_bot(
            model="openai/gpt-4o-mini", budget={"monthly_usd": 0.0018}
        )
        session = None
        replies = []
        for _ in range(4):
            llm.reply("Sure.", prompt_tokens=1000, completion_tokens=1000)
            answer = (await service.chat(deployment, "hi", session)).json()
            session = answer["session"]
            replies.append(answer["reply"])
        assert replies == ["Sure.", "Sure.", "Sure.", OVER_BUDGET_REPLY]
        assert len(llm.calls) == 3
        told = await service.notices()
        assert [text.split(":")[0] for text in told] == [
            "*faq-bot* has used 80% of its monthly budget",
            "*faq-bot* reached its monthly budget",
        ]
        assert "$0.0015 of $0.0018" in told[0] and "$0.0022 of $0.0018" in told[1]
        shown = await service.reply("/budget faq-bot")
        assert "125% of $0.0018" in shown and "Owners told:    80%, 100%" in shown
