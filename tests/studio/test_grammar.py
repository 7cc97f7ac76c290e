"""The offline grammar: slash commands, bare commands, natural phrasings and their errors."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from studio.commands import (
    COMMANDS,
    MAX_INPUT_CHARS,
    AbTestPromoteWinner,
    AbTestStart,
    AbTestStatus,
    AbTestStop,
    BudgetSet,
    BudgetShow,
    Command,
    Confirm,
    DatasetAdd,
    DatasetEvaluate,
    DatasetExpect,
    DatasetFromLast,
    DatasetFromTests,
    DatasetKind,
    DatasetList,
    DatasetRemove,
    DatasetShow,
    Delete,
    Deploy,
    Diff,
    EvalGateSet,
    EvalOnlineSet,
    EvalRun,
    EvalRuns,
    ExportConversations,
    FlowAdd,
    FlowAsk,
    FlowLink,
    FlowRemove,
    FlowSet,
    FlowShow,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    GuardSet,
    GuardShow,
    HandoffSet,
    HandoffShow,
    Help,
    History,
    Invite,
    Join,
    KnowledgeAdd,
    KnowledgeList,
    KnowledgeReindex,
    KnowledgeRemove,
    ListBots,
    ListDeployments,
    MemoryForget,
    MemorySet,
    MemoryShow,
    NewBot,
    Promote,
    Resume,
    ReviewAdd,
    ReviewList,
    Rollback,
    Route,
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleRemove,
    ScheduleResume,
    SecretList,
    SecretRemove,
    SecretSet,
    SetField,
    SetRole,
    ShowBot,
    Stats,
    StatsReportAdd,
    StatsReportRemove,
    StatsReports,
    TestAdd,
    TestList,
    TestRemove,
    TestRun,
    ToolAdd,
    ToolAddMcp,
    ToolList,
    ToolRemove,
    TraceShow,
    TryBot,
    Undeploy,
)
from studio.grammar import GrammarError, not_understood, parse

BOTS = ("faq-bot", "sales-bot")
# the registry says which exist (operations refuse the others)
CHANNELS = ("web", "slack", "telegram", "whatsapp")
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
    ("/set faq-bot knowledge.k 6", SetField(bot="faq-bot", field="knowledge.k", value="6")),
    (
        "/set faq-bot knowledge.min_score 0.4.",
        SetField(bot="faq-bot", field="knowledge.min_score", value="0.4"),
    ),
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
    (
        "/deploy faq-bot whatsapp 106540352242922 template=follow_up:en_US",
        Deploy(
            bot="faq-bot",
            channel="whatsapp",
            target="106540352242922",
            options={"template": "follow_up:en_US"},
        ),
    ),
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
    ("/knowledge faq-bot reindex", KnowledgeReindex(bot="faq-bot")),
    ("knowledge faq-bot", KnowledgeList(bot="faq-bot")),
    (
        "/knowledge faq-bot remove refund policy.pdf",
        KnowledgeRemove(bot="faq-bot", source="refund policy.pdf"),
    ),
    (
        '/schedule faq-bot "0 9 * * *" "hi"',
        ScheduleAdd(bot="faq-bot", cron="0 9 * * *", message="hi"),
    ),
    # -- datasets
    ("/dataset faq-bot from-last 50", DatasetFromLast(bot="faq-bot", count=50)),
    (
        "/dataset faq-bot from-last 500 as Golden",
        DatasetFromLast(bot="faq-bot", count=500, dataset="golden"),
    ),
    ("/dataset from last 1 to recent", DatasetFromLast(count=1, dataset="recent")),
    ("/dataset it from-last 20", DatasetFromLast(count=20)),
    ("/dataset faq-bot from-tests", DatasetFromTests(bot="faq-bot")),
    ("/dataset from-tests as 'regression'", DatasetFromTests(dataset="regression")),
    (
        '/dataset faq-bot add "refund?" expect contains "30 days"',
        DatasetAdd(bot="faq-bot", input="refund?", kind="contains", value="30 days"),
    ),
    (
        f"/dataset add {LDQ}what{RSQ}s up{RDQ} expect judge {LSQ}is friendly{RSQ} to golden",
        DatasetAdd(input=f"what{RSQ}s up", kind="judge", value="is friendly", dataset="golden"),
    ),
    (
        "/dataset add 'hi' expects regex 'h(i|ello)' to \"Golden\".",
        DatasetAdd(input="hi", kind="regex", value="h(i|ello)", dataset="golden"),
    ),
    (
        '/dataset add "when?" expect contains "go to bed"',
        DatasetAdd(input="when?", kind="contains", value="go to bed"),
    ),
    ("/dataset faq-bot", DatasetList(bot="faq-bot")),
    ("/dataset", DatasetList()),
    ("/dataset faq-bot list", DatasetList(bot="faq-bot")),
    ("/datasets", DatasetList()),
    ("/dataset faq-bot show golden", DatasetShow(bot="faq-bot", dataset="golden")),
    ("/dataset show Golden.", DatasetShow(dataset="golden")),
    ("/dataset faq-bot remove golden", DatasetRemove(bot="faq-bot", dataset="golden")),
    ("/dataset delete golden", DatasetRemove(dataset="golden")),
    (
        '/dataset faq-bot expect golden 3 "30 days"',
        DatasetExpect(bot="faq-bot", dataset="golden", row=3, value="30 days"),
    ),
    (
        f"/dataset expect golden #4 {LDQ}is polite{RDQ} judge",
        DatasetExpect(dataset="golden", row=4, value="is polite", kind="judge"),
    ),
    ("/dataset expect golden 5 refund", DatasetExpect(dataset="golden", row=5, value="refund")),
    (
        '/dataset evaluate golden judge "Is it polite?"',
        DatasetEvaluate(dataset="golden", kind="judge", value="Is it polite?"),
    ),
    ("/dataset evaluate golden contains", DatasetEvaluate(dataset="golden", kind="contains")),
    (
        "/dataset evaluate golden regex ^Hi",
        DatasetEvaluate(dataset="golden", kind="regex", value="^Hi"),
    ),
    (
        "/dataset evaluate golden latency 2000",
        DatasetEvaluate(dataset="golden", kind="latency", max_ms=2000),
    ),
    (
        "/dataset evaluate golden latency 2000ms",
        DatasetEvaluate(dataset="golden", kind="latency", max_ms=2000),
    ),
    (
        "/dataset evaluate golden latency 1.5 s",
        DatasetEvaluate(dataset="golden", kind="latency", max_ms=1500),
    ),
    (
        "/dataset evaluate golden cost 0.01",
        DatasetEvaluate(dataset="golden", kind="cost", max_usd=0.01),
    ),
    (
        "/dataset evaluate golden cost $0.02",
        DatasetEvaluate(dataset="golden", kind="cost", max_usd=0.02),
    ),
    (
        '/dataset faq-bot evaluate golden simulated "an angry customer" "stays calm"',
        DatasetEvaluate(
            bot="faq-bot",
            dataset="golden",
            kind="simulated",
            persona="an angry customer",
            value="stays calm",
        ),
    ),
    (
        "/dataset evaluate golden simulated 'a student' 'explains' turns 4",
        DatasetEvaluate(
            dataset="golden", kind="simulated", persona="a student", value="explains", turns=4
        ),
    ),
    (
        "/dataset evaluate golden simulated 'a student' 'explains' 3 turns",
        DatasetEvaluate(
            dataset="golden", kind="simulated", persona="a student", value="explains", turns=3
        ),
    ),
    (
        "/dataset evaluate golden off latency",
        DatasetEvaluate(dataset="golden", kind="latency", off=True),
    ),
    # -- evaluation runs, gates, online evaluation
    ("/eval faq-bot", EvalRun(bot="faq-bot")),
    ("/eval", EvalRun()),
    ("/eval faq-bot golden", EvalRun(bot="faq-bot", dataset="golden")),
    ("/eval golden", EvalRun(dataset="golden")),
    ("/eval it golden draft", EvalRun(dataset="golden", versions=["draft"])),
    (  # from-last's default dataset: its name is no version
        "/eval faq-bot recent production draft",
        EvalRun(bot="faq-bot", dataset="recent", versions=["production", "draft"]),
    ),
    (
        "/eval faq-bot Golden draft Staging v3 4 production v3",
        EvalRun(
            bot="faq-bot", dataset="golden", versions=["draft", "staging", "v3", "v4", "production"]
        ),
    ),
    ("/eval 3, V4", EvalRun(versions=["v3", "v4"])),
    ("/eval fqa-bot", EvalRun(bot="fqa-bot")),
    ("/eval unknown-bot golden", EvalRun(bot="unknown-bot", dataset="golden")),
    ("/eval faq-bot runs", EvalRuns(bot="faq-bot")),
    ("/evals faq-bot", EvalRuns(bot="faq-bot")),
    ("/evals faq-bot golden v2", EvalRun(bot="faq-bot", dataset="golden", versions=["v2"])),
    ("/eval faq-bot show 12", EvalRuns(bot="faq-bot", run=12)),
    ("/eval show #12", EvalRuns(run=12)),
    ("/eval faq-bot gate", EvalGateSet(bot="faq-bot")),
    ("/eval gate off", EvalGateSet(off=True)),
    ("/eval faq-bot gate golden 80%", EvalGateSet(bot="faq-bot", dataset="golden", min_score=80)),
    ("/eval gate golden 80", EvalGateSet(dataset="golden", min_score=80)),
    ("/eval gate 75.5 % golden", EvalGateSet(dataset="golden", min_score=75.5)),
    ("/eval gate golden 0.8%", EvalGateSet(dataset="golden", min_score=0.8)),  # percent
    ("/eval gate golden 0.5 %", EvalGateSet(dataset="golden", min_score=0.5)),
    ("/eval gate golden 0", EvalGateSet(dataset="golden", min_score=0)),
    ("/eval gate golden 1.5", EvalGateSet(dataset="golden", min_score=1.5)),
    ("/eval faq-bot online", EvalOnlineSet(bot="faq-bot")),
    ("/eval online off", EvalOnlineSet(off=True)),
    (
        '/eval faq-bot online 10% "Is the answer correct?"',
        EvalOnlineSet(bot="faq-bot", percent=10, rubric="Is the answer correct?"),
    ),
    (
        "/eval online 2.5 % Is it polite",
        EvalOnlineSet(percent=2.5, rubric="Is it polite"),
    ),
    # -- review
    ("/review faq-bot", ReviewList(bot="faq-bot")),
    ("/review", ReviewList()),
    (
        "/review faq-bot add 12 13 to golden",
        ReviewAdd(bot="faq-bot", ids=[12, 13], dataset="golden"),
    ),
    ("/review add #12, #13, #12 into Golden", ReviewAdd(ids=[12, 13], dataset="golden")),
    # -- live A/B
    ("/abtest faq-bot v3 v4 20", AbTestStart(bot="faq-bot", a=3, b=4, percent=20)),
    ("/abtest faq-bot 3 4 20%", AbTestStart(bot="faq-bot", a=3, b=4, percent=20)),
    ("/abtest v3 v4 1 % --env staging", AbTestStart(a=3, b=4, percent=1, env="staging")),
    (
        "/abtest faq-bot V4 v3 99 --env=Production",
        AbTestStart(bot="faq-bot", a=4, b=3, percent=99, env="production"),
    ),
    ("/ab-test this bot v1 v2 50", AbTestStart(a=1, b=2, percent=50)),
    ("/abtest faq-bot", AbTestStatus(bot="faq-bot")),
    ("/abtest", AbTestStatus()),
    ("/abtest faq-bot status", AbTestStatus(bot="faq-bot")),
    ("/abtest stop", AbTestStop()),
    ("/abtest faq-bot promote-winner", AbTestPromoteWinner(bot="faq-bot")),
    ("/abtest faq-bot promote winner", AbTestPromoteWinner(bot="faq-bot")),
    ("/abtest faq-bot status --env staging", AbTestStatus(bot="faq-bot", env="staging")),
    ("/abtest --env=Staging", AbTestStatus(env="staging")),
    ("/abtest faq-bot stop --env staging", AbTestStop(bot="faq-bot", env="staging")),
    (
        "/abtest faq-bot --env production promote-winner",
        AbTestPromoteWinner(bot="faq-bot", env="production"),
    ),
    ("/abtest promote winner --env staging", AbTestPromoteWinner(env="staging")),
]


@pytest.mark.parametrize(("text", "expected"), COMMAND_CASES)
def test_a_slash_command_parses(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS, channels=CHANNELS) == expected


@pytest.mark.parametrize(("text", "expected"), COMMAND_CASES)
def test_the_same_command_without_its_slash(text: str, expected: Command) -> None:
    assert parse(text.removeprefix("/"), bots=BOTS, channels=CHANNELS) == expected


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
        ("set faq-bot's knowledge.k to 6", SetField(bot="faq-bot", field="knowledge.k", value="6")),
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
        (
            "start an a/b test of faq-bot v3 vs v4 at 20%",
            AbTestStart(bot="faq-bot", a=3, b=4, percent=20),
        ),
        (
            "a/b test faq-bot v3 against v4 with 20%",
            AbTestStart(bot="faq-bot", a=3, b=4, percent=20),
        ),
        (
            "run an AB test on faq-bot version 2 and version 5, 10 percent of users in staging",
            AbTestStart(bot="faq-bot", a=2, b=5, percent=10, env="staging"),
        ),
        ("how is the a/b test of faq-bot doing?", AbTestStatus(bot="faq-bot")),
        (f"how{RSQ}s the A/B test going", AbTestStatus()),
        ("how is faq-bot's split test doing", AbTestStatus(bot="faq-bot")),
        ("show me the status of the a/b test of faq-bot", AbTestStatus(bot="faq-bot")),
        ("a/b test results for faq-bot", AbTestStatus(bot="faq-bot")),
        ("stop the a/b test of faq-bot", AbTestStop(bot="faq-bot")),
        ("end faq-bot's ab test.", AbTestStop(bot="faq-bot")),
        ("stop the a/b test", AbTestStop()),
        (
            "promote the winner of the a/b test of faq-bot",
            AbTestPromoteWinner(bot="faq-bot"),
        ),
        ("evaluate faq-bot on golden", EvalRun(bot="faq-bot", dataset="golden")),
        ("evaluate it on the Golden dataset", EvalRun(dataset="golden")),
        ("evaluate faq-bot", EvalRun(bot="faq-bot")),
        ("run an eval of faq-bot on golden", EvalRun(bot="faq-bot", dataset="golden")),
        ("compare v3 and v4 of faq-bot", EvalRun(bot="faq-bot", versions=["v3", "v4"])),
        (
            "compare v3 and v4 of faq-bot on golden",
            EvalRun(bot="faq-bot", dataset="golden", versions=["v3", "v4"]),
        ),
        (
            "compare draft, staging and 4 of faq-bot",
            EvalRun(bot="faq-bot", versions=["draft", "staging", "v4"]),
        ),
        (
            "compare faq-bot's v3 with draft on golden",
            EvalRun(bot="faq-bot", dataset="golden", versions=["v3", "draft"]),
        ),
        (
            "make a dataset from the last 50 turns of faq-bot",
            DatasetFromLast(bot="faq-bot", count=50),
        ),
        (
            "create a dataset of the last 20 conversations of faq-bot called golden",
            DatasetFromLast(bot="faq-bot", count=20, dataset="golden"),
        ),
    ],
)
def test_a_natural_phrasing_parses(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS, channels=CHANNELS) == expected


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
    assert parse(text, bots=BOTS, channels=CHANNELS) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/rollback faq-bot production v99999999999999999999999", "vN must be at most"),
        ("/test faq-bot remove ²", "N must be a number"),
    ],
)
def test_out_of_range_numbers_are_one_line(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as caught:
        parse(text, bots=BOTS, channels=CHANNELS)
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
    assert parse(text, bots=BOTS, channels=CHANNELS) is None


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
        ("/deploy faq-bot", "/deploy BOT", "'slack', 'telegram', 'web' or 'whatsapp'"),
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
        ("promote it to prod", "/promote BOT", "not 'prod'"),
        # -- datasets
        ("/dataset faq-bot from-last", "/dataset BOT from-last N", "how many"),
        ("/dataset faq-bot from-last 0", "/dataset BOT from-last N", "from 1 to 500, not '0'"),
        ("/dataset faq-bot from-last 501", "/dataset BOT from-last N", "from 1 to 500"),
        ("/dataset faq-bot from-last lots", "/dataset BOT from-last N", "not 'lots'"),
        ("/dataset from-last 50 golden", "/dataset BOT from-last N", "'golden'"),
        ("/dataset from-last 50 as gold_en", "/dataset BOT from-last N", "not 'gold_en'"),
        ("/dataset from-tests as " + "x" * 41, "/dataset BOT from-tests", "1-40 of a-z"),
        ('/dataset add "hi" expect equals "x"', "/dataset BOT add", "not 'equals'"),
        ("/dataset add hi expect contains hello", "/dataset BOT add", "quotes"),
        ('/dataset add "a" expect contains "b" to two words', "/dataset BOT add", "quotes"),
        ("/dataset faq-bot show", "/dataset BOT show NAME", "Name the one dataset"),
        ("/dataset remove a b", "/dataset BOT remove NAME", "Name the one dataset"),
        ("/dataset list all", "/dataset BOT list", "'all'"),
        ("/dataset expect golden", "/dataset BOT expect", "the row"),
        ('/dataset expect golden x "v"', "/dataset BOT expect", "ROW is a row number"),
        ('/dataset expect golden 0 "v"', "/dataset BOT expect", "ROW must be at least 1"),
        ("/dataset expect golden 3 30 days", "/dataset BOT expect", "in quotes"),
        ('/dataset expect golden 3 "v" latency', "/dataset BOT expect", "not 'latency'"),
        ('/dataset expect golden 3 "open', "/dataset BOT expect", "not closed"),
        ("/dataset evaluate", "/dataset BOT evaluate", "Name the dataset"),
        ("/dataset evaluate golden", "/dataset BOT evaluate", "then the evaluator"),
        ("/dataset evaluate golden bleu", "/dataset BOT evaluate", "not 'bleu'"),
        ("/dataset evaluate golden latency fast", "/dataset BOT evaluate", "not 'fast'"),
        ("/dataset evaluate golden latency 0", "/dataset BOT evaluate", "MS must be more than 0"),
        ("/dataset evaluate golden latency 11m", "/dataset BOT evaluate", "not '11m'"),
        ("/dataset evaluate golden latency 700s", "/dataset BOT evaluate", "at most 600000."),
        ("/dataset evaluate golden cost", "/dataset BOT evaluate", "USD is the dearest"),
        ("/dataset evaluate golden cost 1000", "/dataset BOT evaluate", "USD must be at most 100."),
        ("/dataset evaluate golden simulated angry", "/dataset BOT evaluate", "PERSONA"),
        (
            '/dataset evaluate golden simulated "a" "b" turns 20',
            "/dataset BOT evaluate",
            "TURNS must be at most 10",
        ),
        (
            '/dataset evaluate golden simulated "a" "b" forever',
            "/dataset BOT evaluate",
            "'forever'",
        ),
        ("/dataset evaluate golden off", "/dataset BOT evaluate", "which evaluator"),
        # -- evaluation runs
        ("/eval faq-bot golden silver", "/eval BOT [DATASET]", "Name one DATASET; 'silver'"),
        ("/eval faq-bot v1 v2 v3 v4 v5 v6 v7", "/eval BOT [DATASET]", "Give at most 6 versions."),
        ("/eval faq-bot v99999999999", "/eval BOT [DATASET]", "no version 'v99999999999'"),
        ("/eval faq-bot gold@en", "/eval BOT [DATASET]", "DATASET is 1-40"),
        ("/eval faq-bot runs now", "/eval BOT runs", "'now'"),
        ("/eval faq-bot show", "/eval BOT runs | /eval BOT show ID", "ID is the number"),
        ("/eval show x", "/eval BOT runs | /eval BOT show ID", "ID is the number"),
        ("/eval gate golden", "/eval BOT gate", "lowest score"),
        ("/eval gate golden eighty", "/eval BOT gate", "lowest score"),
        ("/eval gate golden 120%", "/eval BOT gate", "MIN-SCORE must be at most 100."),
        ("/eval online 10%", "/eval BOT online", "RUBRIC"),
        ('/eval online lots "x"', "/eval BOT online", "not 'lots'"),
        ('/eval online 0% "x"', "/eval BOT online", "PERCENT must be more than 0."),
        ('/eval online 200% "x"', "/eval BOT online", "PERCENT must be at most 100."),
        # -- review
        ("/review faq-bot add 12", "/review BOT add", "which dataset"),
        ("/review faq-bot add to golden", "/review BOT add", "Give the ids"),
        ("/review faq-bot add twelve to golden", "/review BOT add", "not 'twelve'"),
        ("/review faq-bot add 1 to my set", "/review BOT add", "which dataset"),
        ("/review faq-bot frobnicate", "/review BOT | /review BOT add", "'frobnicate'"),
        ("/review faq-bot list all", "/review BOT", "'all'"),
        (
            "/review add " + " ".join(str(n) for n in range(1, 52)) + " to golden",
            "/review BOT add",
            "at most 50 IDs",
        ),
        # -- live A/B
        ("/abtest faq-bot v3 v4 0", "/abtest BOT vA vB", "PERCENT must be from 1 to 99"),
        ("/abtest faq-bot v3 v4 100%", "/abtest BOT vA vB", "PERCENT must be from 1 to 99"),
        ("/abtest faq-bot v3 v4 12.5", "/abtest BOT vA vB", "not '12.5'"),
        ("/abtest faq-bot v3 v4 half", "/abtest BOT vA vB", "not 'half'"),
        ("/abtest faq-bot v3 v3 20", "/abtest BOT vA vB", "two different versions"),
        ("/abtest faq-bot staging v4 20", "/abtest BOT vA vB", "not 'staging'"),
        ("/abtest faq-bot v3 latest 20", "/abtest BOT vA vB", "not 'latest'"),
        ("/abtest faq-bot v0 v4 20", "/abtest BOT vA vB", "vA must be at least 1"),
        ("/abtest faq-bot v3 v4", "/abtest BOT vA vB", "PERCENT"),
        ("/abtest faq-bot v3 v4 20 --env prod", "/abtest BOT vA vB", "not 'prod'"),
        ("/abtest faq-bot v3 v4 20 --env", "/abtest BOT vA vB", "after --env"),
        ("/abtest faq-bot v3 v4 20 --force", "/abtest BOT vA vB", "'--force'"),
        ("/abtest faq-bot pause", "/abtest BOT vA vB PERCENT", "'pause'"),
        ("/abtest faq-bot stop now", "/abtest BOT stop", "'now'"),
        ("/abtest faq-bot status --env prod", "/abtest BOT status [--env", "not 'prod'"),
        ("/abtest faq-bot stop --env", "/abtest BOT stop [--env", "after --env"),
        ("/abtest faq-bot promote-winner --env", "/abtest BOT promote-winner", "after --env"),
        ("/abtest faq-bot stop --force", "/abtest BOT stop [--env", "'--force'"),
        ("start an a/b test of faq-bot v3 vs v4 at 120%", "/abtest BOT", "from 1 to 99"),
        ("a/b test faq-bot v3 against v3 with 20%", "/abtest BOT", "two different"),
        ("make a dataset from the last 900 turns of faq-bot", "/dataset BOT from-last", "500"),
    ],
)
def test_wrong_arguments_say_what_and_show_the_usage(text: str, usage: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS, channels=CHANNELS)
    message = raised.value.message
    assert says in message
    assert f"Usage: {usage}" in message
    assert len(message.splitlines()) <= 2
    assert len(message) < 250
    assert "Traceback" not in message
    assert "pydantic" not in message.lower()
    assert "validation error" not in message.lower()


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("/eval faq-bot gate golden 0.8", "80%"),
        ("/eval gate 0.755 golden", "75.5%"),
        ("/eval gate golden .9", "90%"),
        ("/eval gate golden 1", "100%"),
    ],
)
def test_a_gate_score_written_as_a_fraction_is_refused(text: str, meant: str) -> None:
    """MIN-SCORE is a percentage: a bare 0.8 would be 0.8%, surely not what was meant."""
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS, channels=CHANNELS)
    assert raised.value.message == f"MIN-SCORE is a percentage: did you mean {meant}?"


def test_an_unknown_dataset_action_names_the_actions() -> None:
    """Not every usage line (they would make a long reply): the actions, and /help dataset."""
    with pytest.raises(GrammarError) as raised:
        parse("/dataset faq-bot frobnicate", bots=BOTS)
    message = raised.value.message
    assert "'frobnicate'" in message and "'from-last'" in message and "'evaluate'" in message
    assert "/help dataset" in message and "\n" not in message and len(message) < 250


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


# One line per command of COMMANDS, in the form its usage line shows: the grammar reaches them all.
USAGE_EXAMPLES: dict[type[Command], str] = {
    NewBot: "/newbot faq-bot Answers refunds",
    ListBots: "/bots",
    ShowBot: "/show faq-bot",
    SetField: "/set faq-bot model gpt-4o",
    TryBot: "/try faq-bot hello",
    TestAdd: '/test faq-bot add "hi" expect step "greet"',
    TestList: "/test faq-bot list",
    TestRemove: "/test faq-bot remove 2",
    TestRun: "/test faq-bot",
    KnowledgeAdd: "/knowledge faq-bot add https://example.com",
    KnowledgeList: "/knowledge faq-bot list",
    KnowledgeReindex: "/knowledge faq-bot reindex",
    KnowledgeRemove: "/knowledge faq-bot remove faq.md",
    FlowShow: "/flow faq-bot",
    FlowAdd: "/flow faq-bot add template thanks text=Thanks after start",
    FlowSet: '/flow faq-bot set thanks text="Thank you"',
    FlowLink: "/flow faq-bot link start end",
    FlowRemove: "/flow faq-bot remove thanks",
    FlowAsk: '/flow faq-bot ask email "Your e-mail?"',
    Route: '/route faq-bot "refund" to refunds in router',
    ToolAdd: "/tool faq-bot add https://example.com/openapi.json getOrder --auth acme",
    ToolAddMcp: "/tool faq-bot add-mcp https://example.com/mcp search --allow-changes",
    ToolList: "/tool faq-bot list",
    ToolRemove: "/tool faq-bot remove orders",
    Promote: "/promote faq-bot production --force",
    Rollback: "/rollback faq-bot production v2",
    Deploy: "/deploy faq-bot slack #support --env staging",
    ListDeployments: "/deployments faq-bot",
    Undeploy: "/undeploy faq-bot slack --env staging",
    Stats: "/stats faq-bot 30d",
    StatsReportAdd: "/stats faq-bot weekly on monday at 9:00 in #ops --tz Europe/Lisbon",
    StatsReports: "/stats faq-bot reports",
    StatsReportRemove: "/stats faq-bot reports remove 3",
    ScheduleAdd: '/schedule faq-bot "0 9 * * MON" "Hi" to #ops --tz Europe/Lisbon',
    ScheduleList: "/schedule faq-bot list",
    SchedulePause: "/schedule faq-bot pause morning",
    ScheduleResume: "/schedule faq-bot resume morning",
    ScheduleRemove: "/schedule faq-bot remove morning",
    FollowUpAdd: '/followup faq-bot after 30m "Still there?" times 2',
    FollowUpList: "/followup faq-bot list",
    FollowUpRemove: "/followup faq-bot remove nudge",
    GuardShow: "/guard faq-bot",
    GuardSet: "/guard faq-bot pii on",
    BudgetShow: "/budget faq-bot",
    BudgetSet: "/budget faq-bot $20 per month",
    HandoffShow: "/handoff faq-bot",
    HandoffSet: "/handoff faq-bot to #support timeout 30 tool on",
    Resume: "/resume",
    Diff: "/diff faq-bot v1 v2",
    History: "/history faq-bot",
    MemoryShow: "/memory faq-bot telegram:42",
    MemorySet: "/memory faq-bot telegram:42 set plan gold",
    MemoryForget: "/memory faq-bot telegram:42 forget",
    Delete: "/delete faq-bot",
    SetRole: "/role bob editor",
    Invite: "/invite",
    Join: "/join AbC-123",
    SecretSet: "/secret set acme-crm",
    SecretList: "/secret list",
    SecretRemove: "/secret remove acme-crm",
    DatasetFromLast: "/dataset faq-bot from-last 50 as recent",
    DatasetFromTests: "/dataset faq-bot from-tests as tests",
    DatasetAdd: '/dataset faq-bot add "refund?" expect contains "30 days" to golden',
    DatasetList: "/dataset faq-bot list",
    DatasetShow: "/dataset faq-bot show golden",
    DatasetExpect: '/dataset faq-bot expect golden 3 "30 days" contains',
    DatasetEvaluate: '/dataset faq-bot evaluate golden simulated "a student" "helps" turns 3',
    DatasetRemove: "/dataset faq-bot remove golden",
    EvalRun: "/eval faq-bot golden draft staging v3",
    EvalRuns: "/eval faq-bot show 4",
    EvalGateSet: "/eval faq-bot gate golden 80%",
    EvalOnlineSet: '/eval faq-bot online 10% "Is it correct?"',
    ReviewList: "/review faq-bot",
    ReviewAdd: "/review faq-bot add 12 13 to golden",
    ExportConversations: "/export faq-bot json 30d",
    AbTestStart: "/abtest faq-bot v3 v4 20 --env staging",
    AbTestStatus: "/abtest faq-bot status",
    AbTestStop: "/abtest faq-bot stop",
    AbTestPromoteWinner: "/abtest faq-bot promote-winner",
    TraceShow: "/trace faq-bot 42",
    Help: "/help abtest",
}


def test_every_command_has_a_usage_example() -> None:
    assert set(USAGE_EXAMPLES) == set(COMMANDS)


@pytest.mark.parametrize(
    ("command", "text"), USAGE_EXAMPLES.items(), ids=[c.__name__ for c in USAGE_EXAMPLES]
)
def test_every_usage_line_parses_to_its_command(command: type[Command], text: str) -> None:
    assert text.split()[0] == command.usage.split()[0]
    assert type(parse(text, bots=BOTS, channels=CHANNELS)) is command


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (DatasetAdd, '/dataset faq-bot add "hi" expect {kind} "x"'),
        (DatasetExpect, '/dataset faq-bot expect golden 3 "x" {kind}'),
    ],
)
def test_a_dataset_usage_line_names_every_kind_its_command_takes(
    command: type[Command], said: str
) -> None:
    named = re.findall(r"contains(?:\|\w+)+", command.usage)
    assert [kinds.split("|") for kinds in named] == [list(get_args(DatasetKind))]
    for kind in get_args(DatasetKind):
        parsed = parse(said.format(kind=kind), bots=BOTS)
        assert type(parsed) is command and parsed.kind == kind


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
    assert parse(text, bots=BOTS, channels=CHANNELS) == MemoryShow(bot=bot, user=user)
