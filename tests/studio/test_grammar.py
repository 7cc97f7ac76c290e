"""The offline grammar: slash commands, bare commands, natural phrasings and their errors."""

from __future__ import annotations

import pytest

from studio.commands import (
    COMMANDS,
    MAX_INPUT_CHARS,
    NOT_YET,
    Command,
    Confirm,
    Delete,
    Deploy,
    Diff,
    Help,
    History,
    Invite,
    Join,
    KnowledgeAdd,
    KnowledgeList,
    KnowledgeRemove,
    ListBots,
    ListDeployments,
    MemoryShow,
    NewBot,
    NotYet,
    Promote,
    Rollback,
    ScheduleAdd,
    SetField,
    SetRole,
    ShowBot,
    Stats,
    TestAdd,
    TestList,
    TestRemove,
    TestRun,
    TryBot,
    Undeploy,
)
from studio.grammar import GrammarError, not_understood, parse

BOTS = ("faq-bot", "sales-bot")
LDQ, RDQ, LSQ, RSQ = "\u201c", "\u201d", "\u2018", "\u2019"  # what phones type for " and '

# Each line works with and without its leading slash (Slack users type `newbot faq-bot`).
COMMAND_CASES: list[tuple[str, Command]] = [
    ("/newbot faq-bot", NewBot(bot="faq-bot")),
    (
        "/newbot FAQ-Bot answers refund questions",
        NewBot(bot="faq-bot", description="answers refund questions"),
    ),
    ('/newbot faq-bot "answers refunds"', NewBot(bot="faq-bot", description="answers refunds")),
    ("/bots", ListBots()),
    ("/show", ShowBot()),
    ("/show faq-bot", ShowBot(bot="faq-bot")),
    ("/show unknown-bot", ShowBot(bot="unknown-bot")),
    ("/show it", ShowBot()),
    ("/show this bot", ShowBot()),
    ("/set faq-bot model gpt-4o", SetField(bot="faq-bot", field="model", value="gpt-4o")),
    ("/set model gpt-4o", SetField(field="model", value="gpt-4o")),
    ("/set it temperature 0.2", SetField(field="temperature", value="0.2")),
    (
        "/set faq-bot prompt You're a helpful assistant.",
        SetField(bot="faq-bot", field="prompt", value="You're a helpful assistant."),
    ),
    (
        '/set faq-bot greeting "Hi, I\'m Faq!"',
        SetField(bot="faq-bot", field="greeting", value="Hi, I'm Faq!"),
    ),
    (
        "/set faq-bot prompt Line one.\n  Line two.",
        SetField(bot="faq-bot", field="prompt", value="Line one.\n  Line two."),
    ),
    ("/set faq-bot persona Be brief", SetField(bot="faq-bot", field="prompt", value="Be brief")),
    ('/set faq-bot greeting ""', SetField(bot="faq-bot", field="greeting", value="")),
    ("/try faq-bot hello there", TryBot(bot="faq-bot", message="hello there")),
    ("/try hello there", TryBot(message="hello there")),
    ("/try faq-bot --new", TryBot(bot="faq-bot", new=True)),
    ("/try --new", TryBot(new=True)),
    (
        '/test faq-bot add "refund?" expect contains "30 days"',
        TestAdd(bot="faq-bot", input="refund?", kind="contains", value="30 days"),
    ),
    (
        f"/test add {LDQ}what{RSQ}s up{RDQ} expect judge {LSQ}is friendly{RSQ}",
        TestAdd(input=f"what{RSQ}s up", kind="judge", value="is friendly"),
    ),
    (
        "/test add 'what's up' expect regex 'h(i|ello)'",
        TestAdd(input="what's up", kind="regex", value="h(i|ello)"),
    ),
    ("/test faq-bot list", TestList(bot="faq-bot")),
    ("/test list", TestList()),
    ("/test faq-bot remove 2", TestRemove(bot="faq-bot", number=2)),
    ("/test remove #3", TestRemove(number=3)),
    ("/test faq-bot", TestRun(bot="faq-bot")),
    ("/test", TestRun()),
    ("/promote faq-bot", Promote(bot="faq-bot")),
    ("/promote faq-bot production", Promote(bot="faq-bot", to="production")),
    ("/promote faq-bot staging --force", Promote(bot="faq-bot", force=True)),
    ("/promote production", Promote(to="production")),
    ("/promote --force", Promote(force=True)),
    ("/rollback faq-bot", Rollback(bot="faq-bot")),
    ("/rollback faq-bot staging v2", Rollback(bot="faq-bot", env="staging", version=2)),
    ("/rollback faq-bot production 3", Rollback(bot="faq-bot", version=3)),
    ("/rollback staging", Rollback(env="staging")),
    ("/rollback v4", Rollback(version=4)),
    ("/deploy faq-bot web", Deploy(bot="faq-bot", channel="web")),
    (
        "/deploy faq-bot Slack #Support --env staging",
        Deploy(bot="faq-bot", channel="slack", target="#Support", env="staging"),
    ),
    ("/deploy telegram --env=staging", Deploy(channel="telegram", env="staging")),
    ("/deployments", ListDeployments()),
    ("/deployments faq-bot", ListDeployments(bot="faq-bot")),
    ("/undeploy faq-bot slack", Undeploy(bot="faq-bot", channel="slack")),
    ("/undeploy web --env production", Undeploy(channel="web", env="production")),
    ("/stats", Stats()),
    ("/stats faq-bot 30d", Stats(bot="faq-bot", period="30d")),
    ("/stats 24h", Stats(period="24h")),
    ("/diff faq-bot", Diff(bot="faq-bot")),
    ("/diff faq-bot v1 v2", Diff(bot="faq-bot", a="v1", b="v2")),
    ("/diff 3 draft", Diff(a="v3", b="draft")),
    ("/history faq-bot", History(bot="faq-bot")),
    ("/history", History()),
    ("/delete faq-bot", Delete(bot="faq-bot")),
    ("/delete", Delete()),
    ("/role bob admin", SetRole(user="bob", role="admin")),
    ("/role <@U123ABC> Editor", SetRole(user="<@U123ABC>", role="editor")),
    ("/invite", Invite()),
    ("/join AbC-123", Join(code="AbC-123")),
    ("/help", Help()),
    ("/help set", Help(command="set")),
    ("/help /deploy", Help(command="deploy")),
    (
        "/knowledge faq-bot add https://example.com",
        KnowledgeAdd(bot="faq-bot", source="https://example.com"),
    ),
    (
        '/knowledge add "Refunds take 5 days."',
        KnowledgeAdd(source="Refunds take 5 days."),
    ),
    ("/knowledge faq-bot list", KnowledgeList(bot="faq-bot")),
    ("knowledge faq-bot", KnowledgeList(bot="faq-bot")),
    (
        "/knowledge faq-bot remove refund policy.pdf",
        KnowledgeRemove(bot="faq-bot", source="refund policy.pdf"),
    ),
    (
        '/schedule faq-bot "0 9 * * *" "hi"',
        ScheduleAdd(bot="faq-bot", cron="0 9 * * *", message="hi"),
    ),
    ("/abtest faq-bot v1 v2 50", NotYet(feature=NOT_YET["abtest"])),
]


@pytest.mark.parametrize(("text", "expected"), COMMAND_CASES)
def test_a_slash_command_parses(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(("text", "expected"), COMMAND_CASES)
def test_the_same_command_without_its_slash(text: str, expected: Command) -> None:
    assert parse(text.removeprefix("/"), bots=BOTS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/studio newbot faq-bot",
        "studio newbot faq-bot",
        "/NEWBOT faq-bot",
        "/newbot@StudioBot faq-bot",
    ],
)
def test_prefixes_and_case_do_not_matter(text: str) -> None:
    assert parse(text) == NewBot(bot="faq-bot")


def test_studio_before_a_phrasing_is_dropped_too() -> None:
    assert parse("/studio create a bot called faq-bot") == NewBot(bot="faq-bot")


def test_a_one_word_value_loses_closing_punctuation_and_please() -> None:
    expected = SetField(field="model", value="gpt-4o")
    assert parse("please set the model to gpt-4o, please") == expected
    assert parse("/set model gpt-4o.") == expected
    assert parse("/set prompt Be kind, please.") == SetField(
        field="prompt", value="Be kind, please."
    )


def test_studio_alone_is_help() -> None:
    assert parse("/studio") == Help()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("create a bot called faq-bot", NewBot(bot="faq-bot")),
        (
            "Create a bot named faq-bot that answers refund questions",
            NewBot(bot="faq-bot", description="answers refund questions"),
        ),
        ("make a new bot called faq-bot", NewBot(bot="faq-bot")),
        (
            "please create a bot called `faq-bot` to help with refunds",
            NewBot(bot="faq-bot", description="help with refunds"),
        ),
        (
            "make faq-bot use gpt-4o-mini",
            SetField(bot="faq-bot", field="model", value="gpt-4o-mini"),
        ),
        ("use gpt-4o for faq-bot", SetField(bot="faq-bot", field="model", value="gpt-4o")),
        (
            "set faq-bot's model to anthropic/claude-3-5-sonnet",
            SetField(bot="faq-bot", field="model", value="anthropic/claude-3-5-sonnet"),
        ),
        ("switch faq-bot to gpt-4o.", SetField(bot="faq-bot", field="model", value="gpt-4o")),
        ("make it use offline", SetField(field="model", value="offline")),
        ("set the model to gpt-4o", SetField(field="model", value="gpt-4o")),
        (
            "set faq-bot's prompt to You're a refund helper.",
            SetField(bot="faq-bot", field="prompt", value="You're a refund helper."),
        ),
        (
            "Change the prompt of faq-bot to Be brief",
            SetField(bot="faq-bot", field="prompt", value="Be brief"),
        ),
        (
            "set the prompt to 'Answer in French'",
            SetField(field="prompt", value="Answer in French"),
        ),
        (
            f"set faq-bot{RSQ}s greeting to {LDQ}Hello!{RDQ}",
            SetField(bot="faq-bot", field="greeting", value="Hello!"),
        ),
        (
            "set the temperature of faq-bot to 0.3",
            SetField(bot="faq-bot", field="temperature", value="0.3"),
        ),
        (
            "update its fallback to Sorry, I don't know.",
            SetField(field="fallback", value="Sorry, I don't know."),
        ),
        (
            "set faq-bot description to answers refunds",
            SetField(bot="faq-bot", field="description", value="answers refunds"),
        ),
        ("set faq-bot's history to 5", SetField(bot="faq-bot", field="history", value="5")),
        ("set the system prompt to Be kind", SetField(field="prompt", value="Be kind")),
        ("promote faq-bot to production", Promote(bot="faq-bot", to="production")),
        ("promote faq-bot", Promote(bot="faq-bot")),
        ("promote it to staging, please", Promote(to="staging")),
        ("roll back faq-bot", Rollback(bot="faq-bot")),
        ("rollback faq-bot in staging", Rollback(bot="faq-bot", env="staging")),
        ("roll back faq-bot to v2", Rollback(bot="faq-bot", version=2)),
        ("deploy faq-bot to the web", Deploy(bot="faq-bot", channel="web")),
        ("deploy faq-bot to telegram", Deploy(bot="faq-bot", channel="telegram")),
        ("put faq-bot on slack", Deploy(bot="faq-bot", channel="slack")),
        ("deploy it to the web", Deploy(channel="web")),
        ("take faq-bot off slack", Undeploy(bot="faq-bot", channel="slack")),
        ("how is faq-bot doing?", Stats(bot="faq-bot")),
        ("how's faq-bot doing", Stats(bot="faq-bot")),
        ("stats for faq-bot", Stats(bot="faq-bot")),
        ("How are my bots doing?", Stats()),
        ("how is it doing?", Stats()),
        ("show me faq-bot", ShowBot(bot="faq-bot")),
        ("what does faq-bot look like?", ShowBot(bot="faq-bot")),
        ("what does this bot look like", ShowBot()),
        ("list my bots", ListBots()),
        ("what bots do I have?", ListBots()),
        ("show my bots", ListBots()),
        ("delete faq-bot", Delete(bot="faq-bot")),
        ("please delete faq-bot", Delete(bot="faq-bot")),
        ("remove sales-bot", Delete(bot="sales-bot")),
        ("bots please", ListBots()),
        ("test faq-bot, please", TestRun(bot="faq-bot")),
        ("Can you show faq-bot?", ShowBot(bot="faq-bot")),
        ("delete the bot.", Delete()),
        ("test faq-bot", TestRun(bot="faq-bot")),
        ("run the tests of faq-bot", TestRun(bot="faq-bot")),
        ("run the tests", TestRun()),
        ("try faq-bot: hello", TryBot(bot="faq-bot", message="hello")),
        ("try it: hello", TryBot(message="hello")),
        ("try hello: world", TryBot(message="hello: world")),
        ("ask faq-bot how do refunds work?", TryBot(bot="faq-bot", message="how do refunds work?")),
        ("ask it: what's new", TryBot(message="what's new")),
        ("help", Help()),
        ("what can you do?", Help()),
    ],
)
def test_a_natural_phrasing_parses(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "bots", "expected"),
    [
        ("/try hello there", BOTS, TryBot(message="hello there")),
        ("/try faq-bot hello", BOTS, TryBot(bot="faq-bot", message="hello")),
        ("/try faq-bot hello", (), TryBot(bot="faq-bot", message="hello")),
        ("/try hello", (), TryBot(message="hello")),
        ("/show", BOTS, ShowBot()),
        ("/set model gpt-4o", BOTS, SetField(field="model", value="gpt-4o")),
        ("/set model prompt Hi", ("model",), SetField(bot="model", field="prompt", value="Hi")),
        ("/test list", ("list",), TestRun(bot="list")),
        ("/promote staging", ("staging",), Promote(bot="staging")),
        ("/show it", ("it",), ShowBot(bot="it")),
        ("/show Sales-Bot", ("Sales-Bot",), ShowBot(bot="sales-bot")),
    ],
)
def test_the_team_bots_settle_what_a_first_word_is(
    text: str, bots: tuple[str, ...], expected: Command
) -> None:
    assert parse(text, bots=bots) == expected


def test_ask_takes_a_bot_only_when_the_team_has_it() -> None:
    assert parse("ask for help", bots=BOTS) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/try fqa-bot hello", TryBot(bot="fqa-bot", message="hello")),
        ("try fqa-bot: hello", TryBot(bot="fqa-bot", message="hello")),
        ("ask sales-bto how much?", TryBot(bot="sales-bto", message="how much?")),
        ("/try refunds are slow", TryBot(message="refunds are slow")),
        ("/try bot hello", TryBot(message="bot hello")),
    ],
)
def test_a_near_miss_bot_name_is_taken_as_the_bot(text: str, expected: Command) -> None:
    """Not swallowed into the message to the last bot: the engine then suggests the name."""
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/rollback faq-bot production v99999999999999999999999", "vN must be at most"),
        ("/test faq-bot remove ²", "N must be a number"),
    ],
)
def test_out_of_range_numbers_are_one_line(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as caught:
        parse(text, bots=BOTS)
    assert caught.value.message.startswith(says)


@pytest.mark.parametrize(
    ("text", "accept"),
    [
        ("yes", True),
        ("Y", True),
        ("/yes", True),
        ("confirm", True),
        ("ok, do it", True),
        ("Yes please!", True),
        ("go ahead", True),
        ("no", False),
        ("n", False),
        ("cancel", False),
        ("No, thanks.", False),
        (f"don{RSQ}t", False),
    ],
)
def test_a_short_reply_confirms_or_cancels(text: str, accept: bool) -> None:
    assert parse(text) == Confirm(accept=accept)


@pytest.mark.parametrize(
    "text", ["hello there", "what is the weather like", "make it use emojis", "/frobnicate", ""]
)
def test_anything_else_is_not_a_command(text: str) -> None:
    assert parse(text, bots=BOTS) is None


@pytest.mark.parametrize(
    ("text", "usage", "says"),
    [
        ("/newbot", "/newbot NAME", "name"),
        ("/set faq-bot colour red", "/set BOT FIELD VALUE", "'prompt', 'model', 'temperature'"),
        ("/set faq-bot prompt", "/set BOT FIELD VALUE", "Give the new prompt"),
        ("/promote faq-bot prod", "/promote BOT", "'staging' or 'production', not 'prod'"),
        ("/promote faq-bot staging now", "/promote BOT", "'now'"),
        ("/test faq-bot remove abc", "/test BOT remove N", "N must be a number"),
        ("/test faq-bot remove 0", "/test BOT remove N", "N must be at least 1"),
        ("/test faq-bot add hi expect contains hello", "/test BOT add", "quotes"),
        (
            '/test add "hi" expect equals "hello"',
            "/test BOT add",
            "'contains', 'regex', 'judge' or 'step'",
        ),
        ("/test faq-bot frobnicate", "/test BOT | /test BOT list", "'frobnicate'"),
        ("/role bob king", "/role USER", "'owner', 'admin', 'editor' or 'viewer'"),
        ("/role bob", "/role USER", "role"),
        ("/rollback faq-bot prod", "/rollback BOT", "'staging' or 'production'"),
        ("/rollback faq-bot staging v0", "/rollback BOT", "at least 1"),
        ("/deploy faq-bot", "/deploy BOT", "'web', 'slack' or 'telegram'"),
        ("/deploy faq-bot discord", "/deploy BOT", "not 'discord'"),
        ("/deploy faq-bot web --env prod", "/deploy BOT", "not 'prod'"),
        ("/undeploy faq-bot web extra", "/undeploy BOT", "'extra'"),
        ("/stats faq-bot 1d", "/stats [BOT]", "'24h', '7d' or '30d'"),
        ("/diff faq-bot v1 banana", "/diff BOT", "'banana'"),
        ("/show faq-bot sales-bot", "/show BOT", "'sales-bot'"),
        ("/try faq-bot", "/try BOT MESSAGE", "Say what"),
        ("/join", "/join CODE", "code"),
        ("/invite everyone", "/invite", "'everyone'"),
        ("/bots all", "/bots", "'all'"),
        ("/newbot " + "x" * 81, "/newbot NAME", "at most 40"),
        ("/diff faq-bot v" + "1" * 30, "/diff BOT", "at most 20"),
        ("deploy faq-bot to discord", "/deploy BOT", "not 'discord'"),
        ("promote it to prod", "/promote BOT", "not 'prod'"),
    ],
)
def test_wrong_arguments_say_what_and_show_the_usage(text: str, usage: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    message = raised.value.message
    assert says in message
    assert f"Usage: {usage}" in message
    assert len(message.splitlines()) <= 2
    assert len(message) < 250
    assert "Traceback" not in message
    assert "pydantic" not in message.lower()
    assert "validation error" not in message.lower()


def test_a_wrong_argument_is_echoed_on_one_short_line() -> None:
    with pytest.raises(GrammarError) as raised:
        parse("/promote faq-bot " + "production\nand more" * 20, bots=BOTS)
    assert len(raised.value.message.splitlines()) == 2


def test_too_long_input_names_the_limit() -> None:
    with pytest.raises(GrammarError) as raised:
        parse("/try faq-bot " + "a" * MAX_INPUT_CHARS)
    assert str(MAX_INPUT_CHARS) in raised.value.message
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("word", sorted({command.name.split()[0] for command in COMMANDS}))
def test_every_command_word_is_a_command_even_without_arguments(word: str) -> None:
    try:
        assert parse(f"/{word}") is not None
    except GrammarError as error:
        assert f"Usage: /{word}" in error.message


def test_not_understood_names_the_closest_command() -> None:
    reply = not_understood("shwo faq-bot")
    assert "/show" in reply
    assert "/help" in reply
    assert len(reply.splitlines()) <= 2


@pytest.mark.parametrize("text", ["hello", "", "/", "create me something nice", "x" * 5000])
def test_not_understood_always_offers_help(text: str) -> None:
    reply = not_understood(text)
    assert "/help" in reply
    assert "Traceback" not in reply
    assert len(reply) < 200


@pytest.mark.parametrize(
    ("text", "bot", "user"),
    [
        ("what does faq-bot remember about slack:U123?", "faq-bot", "slack:U123"),
        ('What does it know about "telegram:42"', None, "telegram:42"),
        ("what does faq-bot know about web:3f2a.", "faq-bot", "web:3f2a"),
    ],
)
def test_asking_what_a_bot_remembers_keeps_the_user_as_typed(
    text: str, bot: str | None, user: str
) -> None:
    assert parse(text, bots=BOTS) == MemoryShow(bot=bot, user=user)
