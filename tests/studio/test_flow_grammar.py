"""The offline grammar of flows: `/flow`, `/route`, typed `key=value` settings, and the natural
phrasings that build a flow."""

from __future__ import annotations

from typing import Any

import pytest

from studio.commands import (
    Command,
    FlowAdd,
    FlowAsk,
    FlowLink,
    FlowRemove,
    FlowSet,
    FlowShow,
    Route,
    TryBot,
)
from studio.grammar import GrammarError, parse

BOTS = ("faq-bot", "billing-bot")
LDQ, RDQ = "\u201c", "\u201d"

CASES: list[tuple[str, Command]] = [
    ("/flow faq-bot", FlowShow(bot="faq-bot")),
    ("/flow", FlowShow()),
    ("/flow it", FlowShow()),
    (
        '/flow faq-bot add template thanks text="Thanks, bye!" after llm',
        FlowAdd(
            bot="faq-bot",
            kind="template",
            id="thanks",
            params={"text": "Thanks, bye!"},
            after="llm",
        ),
    ),
    (
        "/flow add extract contact fields=email,phone",
        FlowAdd(kind="extract", id="contact", params={"fields": "email,phone"}),
    ),
    (
        "/flow faq-bot add Router Triage default=llm",
        FlowAdd(bot="faq-bot", kind="router", id="triage", params={"default": "llm"}),
    ),
    (
        f"/flow add template hi text={LDQ}Hi there{RDQ}",
        FlowAdd(kind="template", id="hi", params={"text": "Hi there"}),
    ),
    (
        '/flow add template hi text="Say \\"hi\\" to {{ participant.name }}" ',
        FlowAdd(kind="template", id="hi", params={"text": 'Say "hi" to {{ participant.name }}'}),
    ),
    (
        "/flow faq-bot set llm prompt='Be brief.' top_k=3 min_score=0.25 on=true gone=",
        FlowSet(
            bot="faq-bot",
            id="llm",
            params={"prompt": "Be brief.", "top_k": 3, "min_score": 0.25, "on": True, "gone": None},
        ),
    ),
    (
        '/flow set triage routes=[{"keyword": "refund", "to": "refunds"}] default=llm',
        FlowSet(
            id="triage",
            params={"routes": [{"keyword": "refund", "to": "refunds"}], "default": "llm"},
        ),
    ),
    (
        '/flow set kb tags=[a, 2, "c d"] n=-4',
        FlowSet(id="kb", params={"tags": ["a", 2, "c d"], "n": -4}),
    ),
    ("/flow faq-bot link contact llm", FlowLink(bot="faq-bot", id="contact", next="llm")),
    ("/flow link contact to end", FlowLink(id="contact", next="end")),
    ("/flow faq-bot remove contact", FlowRemove(bot="faq-bot", id="contact")),
    ("/flow faq-bot ask email", FlowAsk(bot="faq-bot", field="email")),
    (
        '/flow ask phone number "What number can we call?"',
        FlowAsk(field="phone", question="What number can we call?"),
    ),
    (
        '/route faq-bot "refund" to refunds',
        Route(bot="faq-bot", value="refund", step="refunds"),
    ),
    ('/route "money back" to refunds', Route(value="money back", step="refunds")),
    ("/route refund to refunds.", Route(value="refund", step="refunds")),
    (
        r"/route faq-bot /order\s+\d+/ to orders",
        Route(bot="faq-bot", match="regex", value=r"order\s+\d+", step="orders"),
    ),
    (
        '/route faq-bot intent "questions about invoices" to billing-bot',
        Route(bot="faq-bot", match="intent", value="questions about invoices", step="billing-bot"),
    ),
    (
        "/route it intent billing questions to billing-bot in triage",
        Route(match="intent", value="billing questions", step="billing-bot", router="triage"),
    ),
    (
        "/route billing questions to billing-bot",
        Route(value="billing questions", step="billing-bot"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_flow_commands_parse_with_and_without_the_slash(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected
    assert parse(text.removeprefix("/"), bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "when someone asks about billing, send them to billing-bot",
            Route(value="billing", step="billing-bot"),
        ),
        ("if they mention refund, send them to refunds", Route(value="refund", step="refunds")),
        (
            "If a customer says 'cancel my order' route them to the cancellations step in faq-bot",
            Route(bot="faq-bot", value="cancel my order", step="cancellations"),
        ),
        ("ask for their email and remember it", FlowAsk(field="email")),
        ("ask for their email", FlowAsk(field="email")),
        (
            "ask them for a phone number and save it in faq-bot",
            FlowAsk(bot="faq-bot", field="phone"),
        ),
        ("ask for their company and remember it", FlowAsk(field="company")),
        ("show me the flow of faq-bot", FlowShow(bot="faq-bot")),
        ("show me faq-bot's flow", FlowShow(bot="faq-bot")),
        ("what's the pipeline of faq-bot?", FlowShow(bot="faq-bot")),
        ("show the flow", FlowShow()),
    ],
)
def test_flow_phrasings(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ask for help", None),  # not a field to remember
        ("ask faq-bot how are you", TryBot(bot="faq-bot", message="how are you")),
    ],
)
def test_phrasings_that_are_not_flows(text: str, expected: Any) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "usage", "says"),
    [
        ("/flow faq-bot add", "/flow BOT add KIND ID", "Give the kind of step, then its id"),
        ("/flow add wizard x", "/flow BOT add KIND ID", "'tool', not 'wizard'"),
        ("/flow add template a b c", "/flow BOT add KIND ID", "I didn't expect 'b c'."),
        ("/flow add template a after", "/flow BOT add KIND ID", "'after'"),
        (
            "/flow add template a text=Thanks for asking",
            "/flow BOT add KIND ID",
            "I didn't expect 'for asking': put a value with spaces in quotes",
        ),
        ("/flow set a text=Hi there", "/flow BOT set ID", "put a value with spaces in quotes"),
        ('/flow set llm text="unclosed', "/flow BOT set ID", "is not closed"),
        ("/flow set llm routes=[{oops}]", "/flow BOT set ID", "is not valid JSON"),
        ("/flow set llm routes=[1, 2", "/flow BOT set ID", "bracket"),
        ("/flow set llm", "/flow BOT set ID", "Give key=value settings"),
        ("/flow set a b", "/flow BOT set ID", "Name one step"),
        ("/flow set llm 9x=1", "/flow BOT set ID", "'9x' is not a setting name"),
        ("/flow link a", "/flow BOT link ID NEXT", "Name the step, then"),
        ("/flow remove", "/flow BOT remove ID", "Name the one step"),
        ("/flow ask", "/flow BOT ask FIELD", "Name what to ask for"),
        ("/route", "/route BOT", 'Say what to match: "KEYWORD"'),
        ('/route faq-bot "refund"', "/route BOT", "Say where the messages go"),
        ("/route faq-bot /unclosed to x", "/route BOT", "Close the regular expression"),
        ('/route faq-bot "refund to x', "/route BOT", "is not closed"),
    ],
)
def test_wrong_flow_arguments_say_what_and_show_the_usage(text: str, usage: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    message = raised.value.message
    assert says in message
    assert f"Usage: {usage}" in message
    assert len(message.splitlines()) <= 2
    assert "Traceback" not in message


def test_an_unknown_flow_action_is_taken_as_a_bot_and_a_wrong_action_lists_the_usages() -> None:
    assert parse("/flow frob", bots=BOTS) == FlowShow(bot="frob")  # the engine suggests a bot
    with pytest.raises(GrammarError) as raised:
        parse("/flow faq-bot frob", bots=BOTS)
    assert "I don't know the flow action 'frob'." in raised.value.message
    assert "/flow BOT add KIND ID" in raised.value.message
