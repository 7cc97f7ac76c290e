"""Presenters: views in, readable neutral answers out (text, fields, buttons)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from builders import flow
from builders.diff import diff_specs
from builders.spec import BotSpec, Expectation, TestCase
from runtime.messages import Address, Attachment, Button, Field, OutgoingMessage
from studio import presenters
from studio.replies import Answer
from studio.test_report import CaseResult, TestReport
from studio.views import (
    AuditView,
    BotListItem,
    BotView,
    ChangeView,
    DeploymentView,
    DiffView,
    MemberView,
    PromoteResult,
    SourceView,
    StatsView,
    VersionView,
)

AT = datetime(2026, 11, 25, 10, 4, tzinfo=UTC)
HASH = "sha256:" + "0123456789abcdef" * 4


def bot_view(**changes: Any) -> BotView:
    spec = BotSpec(name="faq-bot", description="Answers order questions", **changes)
    return BotView(
        name="faq-bot", revision=3, draft=spec, environments={"staging": 2}, updated_at=AT
    )


def stats_view(**changes: Any) -> StatsView:
    values: dict[str, Any] = {
        "bot": "faq-bot",
        "period": "7d",
        "turns": 120,
        "conversations": 30,
        "users": 14,
        "errors": 2,
        "error_rate": 0.0167,
        "blocked": 0,
        "latency_p50_ms": 820.4,
        "latency_p95_ms": 2100.0,
        "prompt_tokens": 12000,
        "completion_tokens": 3000,
        "cost_usd": 0.0123,
        "unknown_cost_turns": 0,
    }
    return StatsView(**(values | changes))


def deployment_view(**changes: Any) -> DeploymentView:
    values: dict[str, Any] = {
        "id": "d_abc",
        "bot": "faq-bot",
        "channel": "web",
        "env": "production",
        "target": "bot-1",
        "status": "active",
        "url": "/chat/d_abc",
        "version": 2,
        "created_at": AT,
    }
    return DeploymentView(**(values | changes))


def fields(answer: Answer) -> dict[str, str]:
    return {f.label: f.value for f in answer.fields}


# -- bots ------------------------------------------------------------------------------------


def test_bot_card_snapshot() -> None:
    answer = presenters.bot_card(bot_view(model="gpt-4o-mini", temperature=1.0))
    assert presenters.render_text(answer) == (
        "*faq-bot*\n"
        "Answers order questions\n"
        "\n"
        "Model:          gpt-4o-mini\n"
        "Temperature:    1\n"
        "History:        10 turns\n"
        "Greeting:       Hi! How can I help?\n"
        "Fallback:       I can't answer that yet.\n"
        "Prompt:         You are a helpful, concise assistant.\n"
        "Tests:          0\n"
        "Knowledge:      0 sources\n"
        "Flow:           plain (one answering step; /flow faq-bot add … builds on it)\n"
        "Draft revision: 3\n"
        "Staging:        v2\n"
        "Production:     —"
    )


def test_bot_card_counts_a_flow_s_steps_and_kinds() -> None:
    pipeline = [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "x", "to": "a"}], "default": "b"},
        },
        {"id": "a", "kind": "template", "params": {"text": "A"}},
        {"id": "b", "kind": "llm"},
    ]
    flow = fields(presenters.bot_card(bot_view(pipeline=pipeline)))["Flow"]
    assert flow == "3 steps (llm, router, template): /flow faq-bot shows it"


def test_bot_card_shows_the_start_of_a_long_prompt_on_one_line() -> None:
    prompt = "You answer refund questions.\n\nBe brief.  " + "x" * 500
    value = fields(presenters.bot_card(bot_view(prompt=prompt)))["Prompt"]
    assert value.startswith("You answer refund questions. Be brief. xxx")
    assert value.endswith("…")
    assert len(value) == 200
    assert "\n" not in value


def test_bot_card_without_description_or_greeting() -> None:
    spec = BotSpec(name="bare", greeting="")
    view = BotView(name="bare", revision=1, draft=spec, environments={}, updated_at=AT)
    answer = presenters.bot_card(view)
    assert answer.text == "*bare*"
    assert fields(answer)["Greeting"] == "—"
    assert fields(answer)["Staging"] == "—"


def test_bot_list_line_per_bot_with_description() -> None:
    items = [
        BotListItem(
            name="faq-bot",
            description="Answers FAQ",
            model="gpt-4o",
            environments={"staging": 1},
            versions=1,
        ),
        BotListItem(name="other", description="", model="offline", environments={}, versions=0),
    ]
    lines = presenters.bot_list(items).text.splitlines()
    assert "*faq-bot* — gpt-4o · staging v1 · production —" in lines
    assert "  Answers FAQ" in lines
    assert "*other* — offline · staging — · production —" in lines


def test_bot_list_empty_hints_at_newbot() -> None:
    assert "/newbot NAME" in presenters.bot_list([]).text


def test_created_names_the_next_steps_and_carries_the_card() -> None:
    answer = presenters.created(bot_view())
    assert answer.text.startswith("Created draft bot *faq-bot*.")
    for step in ("/set faq-bot prompt", "/try faq-bot hello", "/promote faq-bot"):
        assert step in answer.text
    assert fields(answer)["Model"] == "offline"


def test_edited_names_the_new_value_and_revision() -> None:
    answer = presenters.edited(bot_view(model="gpt-4o-mini"), "model")
    assert answer.text == "*faq-bot* model is now `gpt-4o-mini` (draft revision 3)."
    assert "`0.2`" in presenters.edited(bot_view(temperature=0.2), "temperature").text
    assert "is now empty" in presenters.edited(bot_view(greeting=""), "greeting").text


# -- diffs -----------------------------------------------------------------------------------


def test_diff_shows_prompt_lines_in_a_code_block_and_scalars_inline() -> None:
    before = BotSpec(name="faq-bot", prompt="Be brief.\nCite sources.")
    after = BotSpec(name="faq-bot", prompt="Be brief.\nNever guess.", temperature=1.2)
    changes = [
        ChangeView(field=c.field, before=c.before, after=c.after, lines=list(c.lines))
        for c in diff_specs(before, after)
    ]
    text = presenters.diff(DiffView(bot="faq-bot", before="v1", after="draft", changes=changes))
    assert text.text.startswith("*faq-bot*: v1 → draft\n")
    assert "prompt:\n```\n@@ -1,2 +1,2 @@\n Be brief.\n-Cite sources.\n+Never guess.\n```" in (
        text.text
    )
    assert "temperature: 0.7 → 1.2" in text.text


def test_diff_shows_the_flow_step_by_step() -> None:
    before = flow.add_step(BotSpec(name="faq-bot"), "template", "refunds", {"text": "5 days."}).spec
    before = flow.add_route(before, {"keyword": "refund"}, "refunds").spec
    after = flow.set_params(before, "refunds", {"text": "3 days."}).spec
    after = flow.add_route(after, {"intent": "billing"}, ask_bot="billing-bot").spec
    changes = [
        ChangeView(field=c.field, before=c.before, after=c.after, lines=list(c.lines))
        for c in diff_specs(before, after)
    ]
    view = DiffView(bot="faq-bot", before="v1", after="draft", changes=changes)
    assert presenters.diff(view).text == "\n".join(
        [
            "*faq-bot*: v1 → draft",
            "flow (pipeline):",
            '  ~ `router` route intent "billing" → `billing-bot` added',
            '  ~ `refunds` text: "5 days." → "3 days."',
            "  + `billing-bot` bot asks billing-bot",
        ]
    )


def test_diff_lists_by_size() -> None:
    change = ChangeView(field="tests", before=[], after=[{"turns": ["hi"]}], lines=[])
    view = DiffView(bot="faq-bot", before="v1", after="v2", changes=[change])
    assert "tests: 0 items → 1 item" in presenters.diff(view).text


def test_diff_without_changes() -> None:
    view = DiffView(bot="faq-bot", before="v1", after="draft", changes=[])
    assert "No differences between v1 and draft." in presenters.diff(view).text


# -- tests -----------------------------------------------------------------------------------


def test_test_report_snapshot() -> None:
    report = TestReport(
        bot="faq-bot",
        spec_hash=HASH,
        results=(
            CaseResult(1, "hi", "contains 'hello'", "pass", "hello there"),
            CaseResult(
                2,
                "where is my order?",
                "contains 'tracking'",
                "fail",
                "I can't answer that yet.",
                "the answer does not contain 'tracking'",
            ),
            CaseResult(3, "be nice", "judge 'polite'", "error", "", "no judge model is set"),
        ),
    )
    answer = presenters.test_report(report)
    assert answer.text == (
        "*faq-bot* tests: 1 passed, 2 failed\n"
        "✓ 1. \"hi\" — contains 'hello'\n"
        "✗ 2. \"where is my order?\" — contains 'tracking'\n"
        '   answer: "I can\'t answer that yet."\n'
        "   why: the answer does not contain 'tracking'\n"
        "✗ 3. \"be nice\" — judge 'polite'\n"
        "   error: no judge model is set"
    )
    assert answer.fields == (
        Field(label="Passed", value="1"),
        Field(label="Failed", value="2"),
        Field(label="Draft", value="0123456789ab"),
    )


def test_test_report_truncates_a_long_answer() -> None:
    result = CaseResult(1, "hi", "contains 'x'", "fail", "word " * 200, "missing 'x'")
    text = presenters.test_report(TestReport(bot="b", spec_hash=HASH, results=(result,))).text
    answer_line = next(line for line in text.splitlines() if "answer:" in line)
    assert answer_line.endswith('…"')
    assert len(answer_line) < 320


def test_not_promoted_names_the_first_failing_cases_on_one_line() -> None:
    results = [CaseResult(1, "hi", "contains 'hello'", "pass", "hello")] + [
        CaseResult(n, f"question\n{n}", "contains 'x'", "fail", "no", "missing 'x'")
        for n in range(2, 7)
    ]
    text = presenters.not_promoted(TestReport(bot="b", spec_hash=HASH, results=tuple(results)))
    assert "\n" not in text
    assert text.startswith(
        "Not promoted: b's tests did not pass on this draft (1 passed, 5 failed: "
        "2. \"question 2\": missing 'x'; 3. \"question 3\": missing 'x'; "
        "4. \"question 4\": missing 'x'; 2 more). "
    )


def test_test_report_without_cases_hints_at_adding_one() -> None:
    answer = presenters.test_report(TestReport(bot="faq-bot", spec_hash=HASH, results=()))
    assert '/test faq-bot add "INPUT" expect contains "VALUE"' in answer.text


def test_test_cases_numbered_with_multi_turn_cases() -> None:
    cases = [
        TestCase(turns=["hi"], expect=Expectation(kind="contains", value="hello")),
        TestCase(turns=["hi", "and refunds?"], expect=Expectation(kind="regex", value="30 days?")),
    ]
    lines = presenters.test_cases("faq-bot", cases).text.splitlines()
    assert lines[1:] == [
        "1. \"hi\" → contains 'hello'",
        '2. "hi" / "and refunds?" → regex \'30 days?\'',
    ]


def test_test_cases_empty_hints_at_adding_one() -> None:
    text = presenters.test_cases("faq-bot", []).text
    assert '/test faq-bot add "INPUT" expect contains "VALUE"' in text


# -- stats -----------------------------------------------------------------------------------


def test_stats_of_one_bot_as_fields() -> None:
    answer = presenters.stats([stats_view(unknown_cost_turns=3)])
    assert answer.text == "*faq-bot* — last 7 days"
    assert fields(answer) == {
        "Turns": "120",
        "Conversations": "30",
        "Users": "14",
        "Errors": "2 (1.7%)",
        "Latency p50/p95": "820 / 2,100 ms",
        "Tokens": "12,000 prompt / 3,000 completion",
        "Cost": "$0.0123 (3 turns at unknown price)",
    }


def test_stats_unknown_cost_and_latency() -> None:
    answer = presenters.stats([stats_view(cost_usd=None, latency_p50_ms=None, latency_p95_ms=None)])
    assert fields(answer)["Cost"] == "unknown"
    assert fields(answer)["Latency p50/p95"] == "— / — ms"


def test_stats_without_turns_names_the_period_in_words() -> None:
    assert "no conversations in the last 24 hours" in (
        presenters.stats([stats_view(period="24h", turns=0)]).text
    )
    idle = [stats_view(turns=0, period="30d"), stats_view(bot="other", turns=0, period="30d")]
    assert presenters.stats(idle).text == "No conversations in the last 30 days."


def test_stats_of_several_bots_one_line_each() -> None:
    views = [stats_view(), stats_view(bot="quiet", turns=0), stats_view(bot="new", cost_usd=None)]
    lines = presenters.stats(views).text.splitlines()
    assert lines[0] == "Last 7 days:"
    assert lines[1].startswith("*faq-bot* — 120 turns · 14 users · 2 errors (1.7%)")
    assert lines[1].endswith("cost $0.0123")
    assert lines[2] == "*quiet* — no conversations"
    assert lines[3].endswith("cost unknown")


def test_stats_by_version_and_channel_when_more_than_one() -> None:
    def usage(turns: int, cost: float | None, **more: Any) -> dict[str, Any]:
        return {"turns": turns, "errors": 0, "prompt_tokens": turns * 100,
                "completion_tokens": turns * 10, "cost_usd": cost, "unknown_cost_turns": 0,
                **more}  # fmt: skip

    one = stats_view(
        versions=[usage(120, 0.0123, version=2)], channels=[usage(120, 0.0123, channel="web")]
    )
    assert "v2" not in fields(presenters.stats([one]))  # the totals say it all
    views = [usage(70, 0.01, version=n) for n in (7, 6, 5, 4, 3, 2)]
    views[1] = usage(30, None, version=6, unknown_cost_turns=30)
    many = stats_view(
        versions=views,
        channels=[usage(100, 0.0123, channel="web"), usage(20, None, channel="telegram")],
    )
    shown = fields(presenters.stats([many]))
    assert shown["v7"] == "70 turns · 7,000 + 700 tokens · cost $0.0100"
    assert shown["v6"] == "30 turns · 3,000 + 300 tokens · cost unknown"  # never $0
    assert "v3" not in shown and shown["older"] == "140 turns of 2 versions"
    assert shown["on web"] == "100 turns · 10,000 + 1,000 tokens · cost $0.0123"
    assert shown["on telegram"] == "20 turns · 2,000 + 200 tokens · cost unknown"


def test_stats_without_bots() -> None:
    assert "/newbot" in presenters.stats([]).text


# -- deployments, versions, history ----------------------------------------------------------


def test_deployments_line_per_deployment() -> None:
    views = [
        deployment_view(),
        deployment_view(
            id="d_x", channel="slack", target="#support", url=None, env="staging", version=None
        ),
    ]
    lines = presenters.deployments(views).text.splitlines()
    assert "faq-bot · web · production (v2) · active · /chat/d_abc" in lines
    assert "faq-bot · slack · staging (no version) · active · #support" in lines


def test_deployments_empty_hints_at_deploy() -> None:
    assert "/deploy BOT web" in presenters.deployments([]).text


def test_deployed_web_gives_the_url_others_the_target_and_id() -> None:
    web = presenters.deployed(deployment_view(url="https://studio.example/chat/d_abc"))
    assert web.text == (
        "*faq-bot* production (v2) is live on the web: https://studio.example/chat/d_abc"
    )
    slack = presenters.deployed(
        deployment_view(id="d_x", channel="slack", target="#support", url=None)
    ).text
    assert slack.startswith("*faq-bot* production (v2) is live on slack #support")
    assert "d_x" in slack


def test_versions_newest_first_with_environments() -> None:
    views = [
        VersionView(number=1, spec_hash=HASH, created_by="alice", created_at=AT, environments=[]),
        VersionView(
            number=2,
            spec_hash=HASH,
            created_by="bob",
            created_at=AT,
            environments=["staging", "production"],
        ),
    ]
    lines = presenters.versions("faq-bot", views).text.splitlines()
    assert lines[1] == "v2 · 2026-11-25 10:04 · bob · `0123456789ab` · staging, production"
    assert lines[2].startswith("v1 · 2026-11-25 10:04 · alice")
    assert "/promote faq-bot" in presenters.versions("faq-bot", []).text


def test_history_newest_first_with_compact_changes() -> None:
    events = [
        AuditView(
            at=AT,
            actor="alice",
            action="bot.edit",
            target="faq-bot",
            before={"model": "offline"},
            after={"model": "gpt-4o"},
        ),
        AuditView(
            at=datetime(2026, 11, 26, 9, 30),  # naive: UTC, as SQLite returns it
            actor="bob",
            action="bot.promote",
            target="faq-bot",
            before={"env": "staging", "version": None},
            after={"env": "staging", "version": 1},
        ),
        AuditView(
            at=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
            actor="alice",
            action="bot.edit",
            target="faq-bot",
            before={"prompt": "short"},
            after={"prompt": "long " * 100},
        ),
    ]
    lines = presenters.history("faq-bot", events).text.splitlines()
    assert lines[1] == "2026-11-26 09:30 · bob · bot.promote · env: staging; version: — → 1"
    assert lines[2] == "2026-11-25 10:04 · alice · bot.edit · model: offline → gpt-4o"
    assert lines[3].startswith("2026-11-24 08:00 · alice · bot.edit · prompt: short → long long")
    assert lines[3].endswith("…")
    assert len(lines[3]) < 120


def test_history_of_a_created_bot_skips_empty_values() -> None:
    event = AuditView(
        at=AT,
        actor="alice",
        action="bot.create",
        target="faq-bot",
        before=None,
        after=BotSpec(name="faq-bot").model_dump(mode="json"),
    )
    line = presenters.history("faq-bot", [event]).text.splitlines()[1]
    assert "name: faq-bot; prompt: " in line  # the empty description is left out
    assert "tests" not in line
    assert "No changes recorded" in presenters.history("faq-bot", []).text


def test_promoted_and_rolled_back() -> None:
    staged = presenters.promoted("faq-bot", PromoteResult(version=3, env="staging", created=True))
    assert "v3" in staged.text
    assert "/promote faq-bot production" in staged.text
    live = presenters.promoted("faq-bot", PromoteResult(version=3, env="production", created=False))
    assert live.text.startswith("*faq-bot* production now runs v3.")
    back = presenters.rolled_back(
        "faq-bot", PromoteResult(version=1, env="production", created=False)
    )
    assert back.text == "*faq-bot* production is back on v1."


# -- help, members ---------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    text = presenters.help_text(None).text
    assert "`/newbot NAME [DESCRIPTION]` — create a draft bot" in text
    assert "`/help [COMMAND]`" in text
    assert "`/knowledge BOT add TEXT|URL` — add a note or a web page" in text
    assert "`/abtest BOT vA vB PERCENT [--env staging|production]` — send PERCENT%" in text
    assert "`/dataset BOT from-last N [as NAME]`" in text and "`/review BOT`" in text
    assert "not available yet" not in text
    assert "Commands work with or without the leading /." in text
    assert '"make faq-bot use gpt-4o-mini"' in text


def test_help_for_one_command() -> None:
    text = presenters.help_text("set").text
    assert text.startswith("`/set BOT FIELD VALUE` — ")
    assert (
        "Fields: prompt, model, temperature, greeting, fallback, description, history, voice, "
        "knowledge.k, knowledge.min_score." in text
    )
    assert "confirmation" in presenters.help_text("/delete").text
    assert "/test BOT remove N" in presenters.help_text("test").text
    abtest = presenters.help_text("abtest").text
    assert abtest.startswith("`/abtest BOT vA vB PERCENT")
    assert "`/abtest BOT status [--env staging|production]`" in abtest
    assert "`/abtest BOT promote-winner [--env staging|production]`" in abtest
    assert "confirmation" in abtest  # promote-winner asks first
    assert "`/eval BOT gate DATASET MIN-SCORE% (0-100)" in presenters.help_text("eval").text


def test_help_for_an_unknown_command_names_the_closest() -> None:
    assert "`/promote`" in presenters.help_text("promte").text
    assert "`/help` lists them all" in presenters.help_text("zzzz").text


def test_members_owners_first() -> None:
    views = [
        MemberView(identity="bob", role="viewer", joined_at=AT),
        MemberView(identity="alice", role="owner", joined_at=AT),
    ]
    lines = presenters.members(views).text.splitlines()
    assert lines == [
        "2 members:",
        "alice · owner · joined 2026-11-25 10:04",
        "bob · viewer · joined 2026-11-25 10:04",
    ]


# -- plain text ------------------------------------------------------------------------------


def test_render_text_with_fields_and_confirm_buttons() -> None:
    answer = Answer(
        text="Promote *faq-bot* v2 to production?",
        fields=(Field(label="Version", value="v2"), Field(label="Environment", value="prod")),
        buttons=(
            Button(label="Confirm", action="confirm:t1", style="primary"),
            Button(label="Cancel", action="cancel:t1"),
        ),
    )
    assert presenters.render_text(answer) == (
        "Promote *faq-bot* v2 to production?\n"
        "\n"
        "Version:     v2\n"
        "Environment: prod\n"
        "\n"
        '[Confirm] [Cancel]  (or reply "yes" / "no")'
    )


def test_render_text_of_an_outgoing_message_with_other_buttons_and_a_file() -> None:
    message = OutgoingMessage(
        address=Address(channel="terminal", deployment_id="studio", conversation="c", user="u"),
        text="Here is the spec.",
        buttons=(Button(label="Show", action="show faq-bot"),),
        file=Attachment(name="faq-bot.yaml", content="name: faq-bot\n"),
    )
    assert presenters.render_text(message) == (
        "Here is the spec.\n\n[Show]\n\n(file: faq-bot.yaml)"
    )


def test_a_source_missing_from_the_store_is_explained() -> None:
    indexed = SourceView(name="refunds.pdf", id="sha256:" + "a" * 64, chunks=12)
    lost = SourceView(name="faq.md", id="sha256:" + "b" * 64, chunks=0)
    assert "not searched" not in presenters.knowledge_sources("faq-bot", [indexed]).text
    listed = presenters.knowledge_sources("faq-bot", [indexed, lost]).text
    assert "faq.md · 0 passages" in listed
    assert "not searched" in listed and "Add the same file or text again" in listed


def test_a_reindex_under_way_shows_its_progress() -> None:
    indexed = SourceView(name="refunds.pdf", id="sha256:" + "a" * 64, chunks=12)
    assert "Re-indexing" not in presenters.knowledge_sources("faq-bot", [indexed]).text
    listed = presenters.knowledge_sources("faq-bot", [indexed], reindexing=(64, 300)).text
    assert listed.endswith("Re-indexing with keywords: 64 of 300 passages (it answers meanwhile).")
    starting = presenters.knowledge_sources("faq-bot", [indexed], reindexing=(0, 0)).text
    assert starting.endswith("Re-indexing with keywords: reading the stored passages…")
    assert presenters.knowledge_reindexed("faq-bot", sources=0, chunks=0).text == (
        "*faq-bot* has no stored knowledge to re-index."
    )


def test_a_knowledge_setting_says_where_it_does_not_apply() -> None:
    source = {"id": "sha256:" + "a" * 64, "name": "refunds.pdf"}
    said = presenters.edited(bot_view(knowledge=[source]), "knowledge.k").text
    assert said == "*faq-bot* knowledge.k is now `4` (draft revision 3)."
    empty = presenters.edited(bot_view(), "knowledge.k").text
    assert empty.endswith("It applies once the bot retrieves passages: it has no knowledge yet.")
    steps = [
        {"id": "kb", "kind": "retrieve", "params": {"top_k": 2}, "next": "answer"},
        {"id": "answer", "kind": "llm"},
    ]
    flow = bot_view(knowledge=[source], pipeline=steps)
    assert presenters.edited(flow, "knowledge.k").text.endswith(
        "The step `kb` sets its own top_k=2, which it keeps (/flow faq-bot set kb top_k= uses "
        "the bot's)."
    )
    assert "sets its own" not in presenters.edited(flow, "knowledge.min_score").text
    llm_only = bot_view(knowledge=[source], pipeline=[{"id": "answer", "kind": "llm"}])
    none = presenters.edited(llm_only, "knowledge.min_score").text
    assert "the flow has none (/flow faq-bot add retrieve" in none
