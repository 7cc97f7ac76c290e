"""Transcripts of `/guard` and `/budget` over `POST /api/v1/studio/messages`, and the budget
notices reaching the team's owners and admins through the running service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime.pipeline import TurnContext, TurnOutput, Usage
from runtime.turn.budget import OVER_BUDGET_REPLY, BudgetStep
from runtime.turn.chain import build_chain
from studio.budget_notices import StudioBudgetNotifier
from tests.conftest import running_service, service_settings
from tests.factories import Service
from tests.fakes.llm import FakeLLM
from tests.runtime.turn.steps import context
from tests.storage.spend import spend

pytestmark = pytest.mark.usefixtures("no_provider_keys")


async def draft(service: Service) -> dict[str, Any]:
    return await service.call("GET", "/api/v1/bots/faq-bot")  # type: ignore[no-any-return]


async def test_guardrails_are_shown_and_edited_as_draft_edits(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    shown = await service.reply("/guard faq-bot")
    assert "faq-bot* guardrails (draft revision 1)" in shown
    for line in ("Max message:   4,000 characters", "Blocked terms: none", "not masked"):
        assert line in shown
    assert "Guardrails" not in await service.reply("/show faq-bot")
    assert "v1" in await service.reply("/promote faq-bot")

    masked = await service.reply("/guard faq-bot pii on")
    assert "now masks emails, phone numbers and card numbers" in masked
    assert "draft revision 2" in masked and "/promote faq-bot" in masked
    blocked = await service.reply('/guard block "Pass  Word"')  # the bot talked about last
    assert 'refuses messages with "Pass Word"' in blocked
    again = await service.reply("/guard faq-bot block 'pass word'")
    assert again.startswith("Nothing changed: *faq-bot* already refuses")
    assert "under 500" not in await service.reply("/guard faq-bot max-input 500")

    guard = (await draft(service))["draft"]["guardrails"]
    assert guard == {"max_input_chars": 500, "blocked_terms": ["Pass Word"], "pii": True}
    assert (await draft(service))["revision"] == 4
    card = await service.reply("/show faq-bot")
    assert "messages up to 500 characters · 1 blocked term · personal data masked" in card
    diff = await service.reply("/diff faq-bot")
    assert "guardrails.pii: off → on" in diff
    assert "guardrails.max_input_chars: 4000 → 500" in diff
    history = await service.reply("/history faq-bot")
    assert history.count("bot.edit") >= 3

    not_there = await service.reply('/guard faq-bot unblock "secret"')
    assert not_there == '"secret" is not blocked for faq-bot; blocked: "Pass Word"'
    assert "no longer refuses" in await service.reply('/guard faq-bot unblock "PASS WORD"')
    assert (await draft(service))["draft"]["guardrails"]["blocked_terms"] == []
    exported = yaml.safe_load(await service.call("GET", "/api/v1/bots/faq-bot/export"))
    assert exported["guardrails"]["pii"] is True and "budget" not in exported  # none set


async def test_pii_on_warns_when_the_flow_remembers_what_it_masks(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("ask for their email and remember it")
    masked = await service.reply("/guard faq-bot pii on")
    assert masked.endswith(
        "Note: the flow remembers `remember-email`'s email, which the mask hides from it: those "
        "steps will not remember them any more, and a step that asks for one keeps asking."
    )
    assert (await draft(service))["draft"]["guardrails"]["pii"] is True
    assert "Note:" not in await service.reply("/guard faq-bot max-input 900")


async def test_bad_guard_input_gets_one_line_and_changes_nothing(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    before = await draft(service)
    assert "N must be at least 1." in await service.reply("/guard faq-bot max-input 0")
    assert "N must be at most 4000." in await service.reply("/guard faq-bot max-input 9000")
    assert "Say pii on or pii off." in await service.reply("/guard faq-bot pii maybe")
    assert "in quotes" in await service.reply("/guard faq-bot block")
    unknown = await service.reply("/guard faq-bot shout on")
    assert "I don't know the guardrail 'shout'" in unknown and "Usage: /guard" in unknown
    offline = await service.reply("/guard faq-bot moderation on")
    assert offline.startswith("moderation needs a provider model; faq-bot uses offline")
    patched = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"guardrails": {"moderation": True}}, headers=service.auth()
    )
    assert patched.status_code == 422
    assert "moderation needs a provider model" in patched.json()["error"]

    viewer = "vera"
    assert "guardrails" in await service.reply("/guard faq-bot", user=viewer)
    refused = await service.reply("/guard faq-bot pii on", user=viewer)
    assert refused.startswith("Changing guardrails needs the editor role")
    assert (await service.reply("/budget faq-bot $5 per month", user=viewer)).startswith(
        "Changing the budget needs the editor role"
    )
    assert await draft(service) == before


async def test_moderation_needs_a_model_it_can_reach(tmp_path: Path, llm: FakeLLM) -> None:
    async with running_service(service_settings(tmp_path, llm_api_base=llm.base_url)) as service:
        await service.reply("/newbot faq-bot")
        await service.reply("/set faq-bot model openai/fake-model")
        moderated = await service.reply("/guard faq-bot moderation on")
        assert "checks each message with the provider's moderation first" in moderated
        assert "on (openai/omni-moderation-latest)" in await service.reply("/guard faq-bot")
        set_offline = await service.reply("/set faq-bot model offline")
        assert "moderation needs a provider model" in set_offline
        assert (await draft(service))["draft"]["model"] == "openai/fake-model"
        assert "does not check" in await service.reply("/guard faq-bot moderation off")


async def test_moderation_is_refused_without_a_provider_key(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("OLLAMA_API_BASE", "http://127.0.0.1:9")  # a model that needs no key
    await service.reply("/newbot faq-bot")
    assert "model is now" in await service.reply("/set faq-bot model ollama/llama3")
    refused = await service.reply("/guard faq-bot moderation on")
    assert refused == (
        "moderation checks messages with openai/omni-moderation-latest, which cannot be "
        "called here: openai needs OPENAI_API_KEY"
    )


async def test_the_budget_is_shown_with_this_month_and_edited(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    none = await service.reply("/budget faq-bot")
    assert "faq-bot* budget (draft revision 1)" in none
    assert "$0.00 spent in" in none and "Monthly budget: none" in none
    assert "Per user:       no limit" in none

    monthly = await service.reply("/budget faq-bot $50 per month")
    assert "stops answering end users once it has spent $50.00 in a calendar month" in monthly
    assert "told at 80% and 100%" in monthly and "/promote faq-bot production" in monthly
    assert "10 messages a minute" in await service.reply("/budget 10 per minute per user")
    assert (await draft(service))["draft"]["budget"] == {
        "monthly_usd": 50.0,
        "per_user_per_minute": 10,
    }
    shown = await service.reply("/budget faq-bot")
    assert "0% of $50.00" in shown and "10 messages a minute" in shown
    assert "$50.00 a month · 10 messages a minute per user" in await service.reply("/show")
    assert "bot.edit" in await service.reply("/history faq-bot")

    assert "no monthly budget and no rate limit" in await service.reply("/budget faq-bot off")
    assert "budget" not in (await draft(service))["draft"]
    assert (await service.reply("/budget faq-bot off")).startswith("Nothing changed")
    assert "$N must be more than 0." in await service.reply("/budget faq-bot $0 per month")
    assert "as a budget" in await service.reply("/budget faq-bot lots")
    assert (await draft(service))["revision"] == 4


async def test_production_running_other_limits_is_said(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/promote faq-bot")
    await service.reply("/promote faq-bot production")
    await service.reply("yes")
    assert "Production runs" not in await service.reply("/budget faq-bot")
    await service.reply("/budget faq-bot $5 per month")
    await service.reply("/guard faq-bot pii on")
    differs = "Production runs v1, whose {} differ: end users get these once you promote"
    assert differs.format("budget") in await service.reply("/budget faq-bot")
    assert differs.format("guardrails") in await service.reply("/guard faq-bot")
    diff = await service.reply("/diff faq-bot production draft")
    assert "budget.monthly_usd: off → 5" in diff and "guardrails.pii: off → on" in diff


# -- budget notices, through the Studio --------------------------------------------------------


def _priced(cost: float) -> Any:
    async def endpoint(ctx: TurnContext) -> TurnOutput:
        return TurnOutput(reply="ok", usage=Usage(10, 2, cost), error=None, step="llm")

    return endpoint


async def test_owners_and_admins_hear_of_80_and_100_percent_once(service: Service) -> None:
    await service.reply("/newbot faq-bot")
    await service.reply("/budget faq-bot $1 per month")
    await service.reply("hello", user="vera")  # a viewer: never told
    await service.reply("hello", user="ada")
    await service.reply("/role http:ada admin")
    core: Any = service.app.state.core
    bot = await core.ops.draft(await core.ops.authenticate(service.key), "faq-bot")
    notifier = StudioBudgetNotifier(db=core.db, tell=core.studio.tell_leaders)
    turn = build_chain([BudgetStep(db=core.db, notifier=notifier)], _priced(0.3))

    replies = []
    for _ in range(6):
        ctx = context("hi", bot.spec, bot_id=bot.bot_id)
        replies.append((await turn(ctx)).reply)
    assert replies == ["ok"] * 4 + [OVER_BUDGET_REPLY] * 2
    await core.runtime.drain()

    for user in (None, "ada"):
        told = await service.notices(user=user)
        assert len(told) == 2, told
        assert told[0].startswith("*faq-bot* has used 80% of its monthly budget: $0.90 of $1.00")
        assert told[1].startswith("*faq-bot* reached its monthly budget: $1.20 of $1.00")
        assert "/budget faq-bot $N per month" in told[1]
    assert await service.notices(user="vera") == []
    assert "Owners told:    80%, 100%" in await service.reply("/budget faq-bot")

    await spend(core.db, bot.bot_id, 1.2)  # what recording stores of those turns
    again = build_chain([BudgetStep(db=core.db, notifier=notifier)], _priced(0.3))  # a restart
    assert (await again(context("hi", bot.spec, bot_id=bot.bot_id))).reply == OVER_BUDGET_REPLY
    await core.runtime.drain()
    assert len(await service.notices()) == 2
