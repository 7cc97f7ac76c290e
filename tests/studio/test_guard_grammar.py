"""`/guard` and `/budget` in the offline grammar, and as the builder model's tools."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from studio.commands import (
    BudgetSet,
    BudgetShow,
    Command,
    GuardSet,
    GuardShow,
    command_for_tool,
    tool_schemas,
)
from studio.grammar import GrammarError, parse

BOTS = ["faq-bot"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/guard faq-bot", GuardShow(bot="faq-bot")),
        ("/guard", GuardShow()),
        ("guard it", GuardShow()),
        ("/guard faq-bot pii on", GuardSet(bot="faq-bot", pii=True)),
        ("/guard pii OFF", GuardSet(pii=False)),
        ('/guard faq-bot block "Pass   word"', GuardSet(bot="faq-bot", block="Pass word")),
        ("/guard faq-bot block \u201cpassword\u201d", GuardSet(bot="faq-bot", block="password")),
        ("/guard faq-bot unblock password", GuardSet(bot="faq-bot", unblock="password")),
        ("/guard faq-bot max-input 500", GuardSet(bot="faq-bot", max_input=500)),
        ("/guard faq-bot moderation on", GuardSet(bot="faq-bot", moderation=True)),
        ("/budget faq-bot", BudgetShow(bot="faq-bot")),
        ("/budget", BudgetShow()),
        ("/budget faq-bot $50 per month", BudgetSet(bot="faq-bot", monthly_usd=50)),
        ("/budget $12.50/month", BudgetSet(monthly_usd=12.5)),
        ("/budget faq-bot 20 usd a month", BudgetSet(bot="faq-bot", monthly_usd=20)),
        ("/budget it $5 monthly", BudgetSet(monthly_usd=5)),
        (
            "/budget faq-bot 10 per minute per user",
            BudgetSet(per_user_per_minute=10, bot="faq-bot"),
        ),
        ("/budget faq-bot 3 messages a minute", BudgetSet(bot="faq-bot", per_user_per_minute=3)),
        ("/budget faq-bot off", BudgetSet(bot="faq-bot", off=True)),
        ("budget OFF.", BudgetSet(off=True)),
    ],
)
def test_guard_and_budget_parse(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/guard faq-bot pii maybe", "Say pii on or pii off."),
        ("/guard faq-bot moderation", "Say moderation on or moderation off."),
        ("/guard faq-bot block ''", 'Give the term to block in quotes, e.g. "password".'),
        ("/guard faq-bot max-input lots", "N must be a number of characters, not 'lots'."),
        ("/guard faq-bot max-input 0", "N must be at least 1."),
        ("/guard faq-bot max-input 4001", "N must be at most 4000."),
        ("/guard faq-bot shout on", "I don't know the guardrail 'shout'"),
        ("/budget faq-bot $0 per month", "$N must be more than 0."),
        ("/budget faq-bot 0 per minute per user", "N must be at least 1."),
        ("/budget faq-bot 5000 per minute", "N must be at most 1000."),
        ("/budget faq-bot $5 per week", "I didn't understand '$5 per week' as a budget."),
    ],
)
def test_wrong_guard_and_budget_input_is_one_line_and_the_usage(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    problem, usage = raised.value.message.split("\n")
    assert problem.startswith(says)
    assert usage.startswith(("Usage: /guard BOT pii", "Usage: /budget BOT $N"))


def test_a_change_must_change_something() -> None:
    with pytest.raises(ValidationError, match="say what to change"):
        GuardSet(bot="faq-bot")
    with pytest.raises(ValidationError, match="or off alone"):
        BudgetSet(bot="faq-bot")
    with pytest.raises(ValidationError, match="or off alone"):
        BudgetSet(bot="faq-bot", off=True, monthly_usd=5)
    both = BudgetSet(bot="faq-bot", monthly_usd=5, per_user_per_minute=3)
    assert (both.monthly_usd, both.per_user_per_minute) == (5, 3)


def test_the_builder_model_can_call_them() -> None:
    names = {tool["function"]["name"] for tool in tool_schemas()}
    assert {"guard", "guard_set", "budget", "budget_set"} <= names
    assert command_for_tool("guard_set") is GuardSet
    [schema] = [t for t in tool_schemas() if t["function"]["name"] == "budget_set"]
    assert set(schema["function"]["parameters"]["properties"]) == {
        "bot",
        "monthly_usd",
        "per_user_per_minute",
        "off",
    }
