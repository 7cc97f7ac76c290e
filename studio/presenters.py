"""Presenters: the views operations return, turned into neutral `Answer`s.

Pure string building, no I/O. Text uses the light markup every front understands (`*bold*`,
`` `code` ``, ``` fences); structured details go into `fields` so Slack can show them as Block Kit
fields and Telegram as lines. `render_text` is the plain form for the terminal and the HTTP API.
Times are shown in UTC as `%Y-%m-%d %H:%M`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, get_args
from urllib.parse import urlsplit

from builders.cron import time_zone
from builders.edit import field_value
from builders.spec import (
    BotSpec,
    Budget,
    Expectation,
    FollowUp,
    Guardrails,
    Handoff,
    Schedule,
    TestCase,
    ToolOperation,
    ToolSpec,
)
from runtime.messages import Field, OutgoingMessage
from runtime.scheduler.types import LastRun, ReportInfo, ScheduleStatus
from runtime.tools.base import ToolCallRecord
from studio.commands import COMMANDS, Command, RoleName, SettableField
from studio.participants import SANDBOX, ChannelMemory, ParticipantView
from studio.replies import CANCEL_PREFIX, CONFIRM_PREFIX, Answer
from studio.test_report import CaseResult, TestReport
from studio.views import (
    Added,
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
    UsageView,
    VersionView,
)

_NONE = "—"
_PERIODS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days"}
_CONFIRM_ACTIONS = (CONFIRM_PREFIX, CANCEL_PREFIX)
_PROMPT_PREVIEW = 200
_ANSWER_PREVIEW = 300
_INPUT_PREVIEW = 80
_VALUE_PREVIEW = 40
_DETAILS_PREVIEW = 200
_NATURAL = (
    '"create a bot called faq-bot"',
    '"make faq-bot use gpt-4o-mini"',
    '"how is faq-bot doing?"',
)


# -- small helpers ---------------------------------------------------------------------------


def one_line(text: str, limit: int) -> str:
    """`text` on one line (runs of whitespace become one space), cut to `limit` with `…`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _utc(at: datetime) -> datetime:
    """`at` in UTC; naive datetimes (SQLite gives those) are UTC already."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def when(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%d %H:%M")


def _version(number: int | None) -> str:
    return _NONE if number is None else f"v{number}"


def _environments(environments: dict[str, int]) -> str:
    return " · ".join(
        f"{env} {_version(environments.get(env))}" for env in ("staging", "production")
    )


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def period_words(period: str) -> str:
    """A period in words: "7d" is "7 days"."""
    return _PERIODS.get(period, period)


def short_hash(spec_hash: str) -> str:
    return spec_hash.removeprefix("sha256:")[:12]


def _value(value: Any, limit: int = _VALUE_PREVIEW) -> str:
    """A spec or audit value, compactly: lists by their size, the rest as short text."""
    if value is None or value == "":
        return _NONE
    if isinstance(value, list):
        return plural(len(value), "item")
    if isinstance(value, float):
        return f"{value:g}"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return one_line(text, limit)


def _expectation(expect: Expectation) -> str:
    return f"{expect.kind} '{one_line(expect.value, _INPUT_PREVIEW)}'"


def _quoted(text: str, limit: int = _INPUT_PREVIEW) -> str:
    return f'"{one_line(text, limit)}"'


def _lines(header: str, rows: Iterable[str]) -> str:
    return "\n".join([header, *rows])


# -- bots ------------------------------------------------------------------------------------


def usd(amount: float) -> str:
    """Dollars with cents; a fraction of a cent with four decimals."""
    return f"${amount:.4f}" if 0 < amount < 0.01 else f"${amount:,.2f}"


def _guardrails(guard: Guardrails) -> str:
    parts = []
    if guard.max_input_chars != Guardrails().max_input_chars:
        parts.append(f"messages up to {guard.max_input_chars:,} characters")
    if guard.blocked_terms:
        parts.append(plural(len(guard.blocked_terms), "blocked term"))
    if guard.pii:
        parts.append("personal data masked")
    if guard.moderation:
        parts.append("moderation")
    return " · ".join(parts)


def _budget(limits: Budget) -> str:
    parts = []
    if limits.monthly_usd is not None:
        parts.append(f"{usd(limits.monthly_usd)} a month")
    if limits.per_user_per_minute is not None:
        parts.append(f"{limits.per_user_per_minute:,} messages a minute per user")
    return " · ".join(parts)


def _limits_fields(draft: BotSpec) -> tuple[Field, ...]:
    """Guardrails and budget, when the draft sets any (`/show`)."""
    fields = []
    if draft.guardrails != Guardrails():
        fields.append(Field(label="Guardrails", value=_guardrails(draft.guardrails)))
    if draft.budget != Budget():
        fields.append(Field(label="Budget", value=_budget(draft.budget)))
    return tuple(fields)


def handoff_summary(handoff: Handoff) -> str:
    """One line: where, the timeout, whether the model may hand over (`/show`, `/diff`)."""
    minutes = handoff.timeout_minutes
    model = "the model may hand over" if handoff.tool else "only handoff steps hand over"
    where = handoff.channel.capitalize()  # the platform, as its kind names it
    return f"{handoff.name} ({where}) · back to the bot after {minutes} min · {model}"


def duration(minutes: int) -> str:
    """Minutes the way people say them: 30m, 2h, 1d, 1h30m."""
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return "".join(parts) or "0m"


def _proactive(message: str) -> str:
    return _quoted(message, _INPUT_PREVIEW)


def schedule_summary(schedule: Schedule) -> str:
    """One line: when (cron and time zone), where, what (`/show`, `/diff`, `/schedule list`)."""
    where = schedule.to_name or schedule.to or "each end user"
    return f"`{schedule.cron}` {schedule.tz} → {where}: {_proactive(schedule.message)}"


def followup_summary(followup: FollowUp) -> str:
    times = "" if followup.times == 1 else f", up to {followup.times} times"
    quiet = duration(followup.after_minutes)
    return f"after {quiet} of silence{times}: {_proactive(followup.message)}"


def local_time(at: datetime, zone: tzinfo) -> str:
    """An instant in a schedule's time zone: `Mon 2025-03-03 09:00 WET`."""
    return _utc(at).astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z").strip()


def _last_run(run: LastRun | None, zone: tzinfo) -> str:
    if run is None:
        return "not run yet"
    shown = f"last {local_time(run.due_at, zone)}: {run.status}"
    if run.sent or run.failed:
        shown += f" ({run.sent:,} sent, {run.failed:,} failed)"
    if run.error:
        shown += f": {run.error}"
    return shown


def _status_line(status: ScheduleStatus, zone: tzinfo) -> str:
    if status.paused:
        nxt = "paused"
    elif status.next_run is None:
        nxt = "never again"
    else:
        nxt = f"next {local_time(status.next_run, zone)}"
    return f"  {status.env} v{status.version}: {nxt} · {_last_run(status.last_run, zone)}"


def schedule_list(
    bot: str, revision: int, schedules: Sequence[Schedule], live: Sequence[ScheduleStatus]
) -> Answer:
    """The draft's schedules and how each runs in each live environment (`/schedule BOT
    list`); a run's times in the schedule's zone (the live version's, when it says)."""
    if not schedules and not live:
        return Answer(
            f'*{bot}* has no schedules. /schedule {bot} "0 9 * * MON-FRI" "Good morning!" '
            "to #channel adds one."
        )
    zones = {schedule.id: time_zone(schedule.tz) for schedule in schedules}
    by_id: dict[str, list[ScheduleStatus]] = {}
    for status in live:
        by_id.setdefault(status.schedule_id, []).append(status)

    def lines(schedule_id: str) -> list[str]:
        # The zone the scheduler gives the next run in (the live version's), else the draft's.
        draft_zone = zones.get(schedule_id, UTC)
        return [
            _status_line(s, (s.next_run.tzinfo if s.next_run else None) or draft_zone)
            for s in by_id.pop(schedule_id, [])
        ]

    rows = [f"*{bot}*'s schedules (draft revision {revision}):"]
    for schedule in schedules:
        rows.append(f"• {schedule.id}: {schedule_summary(schedule)}")
        rows += lines(schedule.id) or [
            "  not live yet: end users get it once you promote the draft"
        ]
    for schedule_id in list(by_id):  # removed from the draft, still in a version
        rows.append(f"• {schedule_id}: not in the draft any more (live until you promote)")
        rows += lines(schedule_id)
    return Answer("\n".join(rows))


def followup_list(bot: str, revision: int, followups: Sequence[FollowUp]) -> Answer:
    """The draft's follow-ups (`/followup BOT list`)."""
    if not followups:
        return Answer(
            f'*{bot}* has no follow-ups. /followup {bot} after 30m "Still there?" adds one.'
        )
    rows = [f"• {f.id}: {followup_summary(f)}" for f in followups]
    return Answer("\n".join([f"*{bot}*'s follow-ups (draft revision {revision}):", *rows]))


def report_list(bot: str, reports: Sequence[ReportInfo]) -> Answer:
    """A bot's scheduled stats reports (`/stats BOT reports`), times in each one's zone."""
    if not reports:
        return Answer(
            f"*{bot}* has no scheduled stats reports. /stats {bot} daily at 9:00 in #channel "
            "posts one every day."
        )
    rows = [f"*{bot}*'s stats reports:"]
    for report in reports:
        zone = time_zone(report.tz)
        nxt = local_time(report.next_run, zone) if report.next_run else "never"
        rows.append(
            f"{report.id}. `{report.cron}` {report.tz} → {report.place}: stats of the last "
            f"{period_words(report.period)} · next {nxt} · {_last_run(report.last_run, zone)}"
        )
    return Answer("\n".join(rows))


def report_added(bot: str, report: ReportInfo, when: str) -> Answer:
    """A stats report set (`/stats BOT daily at 9:00 in #ops`); `when`: "Every day at 09:00"."""
    nxt = local_time(report.next_run, time_zone(report.tz)) if report.next_run else "never"
    period = period_words(report.period)
    return Answer(
        f"{when} ({report.tz}) I post *{bot}*'s stats for the last {period} in "
        f"{report.place} (report {report.id}; next {nxt}). /stats {bot} reports lists them."
    )


_SHOWN_SCHEDULES = 10


def _proactive_fields(bot: str, draft: BotSpec) -> tuple[Field, ...]:
    """Schedules and follow-ups, a line each, when the draft has any (`/show`)."""
    fields = []
    if draft.schedules:
        rows = [f"{s.id}: {schedule_summary(s)}" for s in draft.schedules[:_SHOWN_SCHEDULES]]
        more = len(draft.schedules) - _SHOWN_SCHEDULES
        if more > 0:
            rows.append(f"and {more} more: /schedule {bot} list")
        fields.append(Field(label="Schedules", value="\n".join(rows)))
    if draft.followups:
        rows = [f"{f.id}: {followup_summary(f)}" for f in draft.followups]
        fields.append(Field(label="Follow-ups", value="\n".join(rows)))
    return tuple(fields)


def _proactive_lines(field: str, before: Any, after: Any) -> list[str]:
    """The schedules' or follow-ups' changes, one line each: `+` added, `-` removed, `~`
    changed (as it is now)."""
    model: type[Schedule | FollowUp] = Schedule if field == "schedules" else FollowUp
    old = {item["id"]: item for item in before or []}
    new = {item["id"]: item for item in after or []}
    lines = []
    for key, item in new.items():
        parsed = model.model_validate(item)
        summary = (
            schedule_summary(parsed) if isinstance(parsed, Schedule) else followup_summary(parsed)
        )
        if key not in old:
            lines.append(f"+ {key}: {summary}")
        elif old[key] != item:
            lines.append(f"~ {key}: {summary}")
    lines += [f"- {key}" for key in old if key not in new]
    return lines


def _flow(bot: str, draft: BotSpec) -> str:
    if not draft.pipeline:
        return f"plain (one answering step; /flow {bot} add … builds on it)"
    kinds = ", ".join(sorted({step.kind for step in draft.pipeline}))
    return f"{plural(len(draft.pipeline), 'step')} ({kinds}): /flow {bot} shows it"


def _knowledge(draft: BotSpec) -> str:
    """Its sources and, once any source is there, how they are searched."""
    said = plural(len(draft.knowledge), "source")
    if not draft.knowledge:
        return said
    found = draft.retrieval
    return (
        f"{said}; the {plural(found.k, 'best passage')} at least {found.min_score:g} close by "
        "meaning go to the model (knowledge.k, knowledge.min_score)"
    )


def _tools_field(bot: str, draft: BotSpec) -> tuple[Field, ...]:
    if not draft.tools:
        return ()
    names = ", ".join(f"{tool.name} ({len(tool.operations)})" for tool in draft.tools)
    return (Field(label="Tools", value=f"{names}: /tool {bot} list"),)


def _card_fields(view: BotView) -> tuple[Field, ...]:
    draft = view.draft
    return (
        Field(label="Model", value=draft.model),
        Field(label="Temperature", value=f"{draft.temperature:g}"),
        Field(label="History", value=plural(draft.history, "turn")),
        *(
            (Field(label="Voice", value="voice notes are answered by voice"),)
            if draft.voice
            else ()
        ),
        Field(label="Greeting", value=_value(draft.greeting, _PROMPT_PREVIEW)),
        Field(label="Fallback", value=_value(draft.fallback, _PROMPT_PREVIEW)),
        Field(label="Prompt", value=_value(draft.prompt, _PROMPT_PREVIEW)),
        Field(label="Tests", value=str(len(draft.tests))),
        Field(label="Knowledge", value=_knowledge(draft)),
        Field(label="Flow", value=_flow(view.name, draft)),
        *_tools_field(view.name, draft),
        *_proactive_fields(view.name, draft),
        *_limits_fields(draft),
        *(
            (Field(label="Handoff", value=handoff_summary(draft.handoff)),)
            if draft.handoff is not None
            else ()
        ),
        Field(label="Draft revision", value=str(view.revision)),
        Field(label="Staging", value=_version(view.environments.get("staging"))),
        Field(label="Production", value=_version(view.environments.get("production"))),
    )


def bot_card(view: BotView) -> Answer:
    """The draft of one bot and what each environment runs (`/show`)."""
    title = f"*{view.name}*"
    if view.draft.description:
        title += f"\n{view.draft.description}"
    return Answer(text=title, fields=_card_fields(view))


def bot_list(items: list[BotListItem]) -> Answer:
    """The team's bots, one line each (`/bots`)."""
    if not items:
        return Answer(text="No bots yet. Create one with `/newbot NAME`, e.g. `/newbot faq-bot`.")
    rows = []
    for item in items:
        rows.append(f"*{item.name}* — {item.model} · {_environments(item.environments)}")
        if item.description:
            rows.append(f"  {one_line(item.description, _PROMPT_PREVIEW)}")
    return Answer(text=_lines(f"{plural(len(items), 'bot')}:", rows))


def created(view: BotView) -> Answer:
    """A new draft bot and the next steps."""
    name = view.name
    text = (
        f"Created draft bot *{name}*.\n"
        f"Next: `/set {name} prompt …`, `/try {name} hello`, `/promote {name}`."
    )
    return Answer(text=text, fields=_card_fields(view))


def edited(view: BotView, field: str) -> Answer:
    """One field of the draft changed (`/set`)."""
    value = field_value(view.draft, field)
    shown = "empty" if value == "" else f"`{_value(value, _INPUT_PREVIEW)}`"
    said = f"*{view.name}* {field} is now {shown} (draft revision {view.revision})."
    return Answer(text=" ".join([said, *_retrieval_notes(view, field)]))


# The `retrieve` step's own parameter for each knowledge setting.
_STEP_PARAM = {"knowledge.k": "top_k", "knowledge.min_score": "min_score"}


def _retrieval_notes(view: BotView, field: str) -> list[str]:
    """Where a knowledge setting does not apply: a step sets its own, or nothing retrieves."""
    param = _STEP_PARAM.get(field)
    if param is None:
        return []
    steps = [step for step in view.draft.steps() if step.kind == "retrieve"]
    if not steps:
        return [
            "It applies once the bot retrieves passages: it has no knowledge yet."
            if not view.draft.pipeline
            else f"It applies to `retrieve` steps, and the flow has none (/flow {view.name} "
            "add retrieve … adds one)."
        ]
    return [
        f"The step `{step.id}` sets its own {param}={step.params[param]}, which it keeps "
        f"(/flow {view.name} set {step.id} {param}= uses the bot's)."
        for step in steps
        if param in step.params
    ]


# -- diffs, tests ----------------------------------------------------------------------------


_LISTED = {"pipeline": "flow (pipeline)", "tools": "tools"}


def _change(change: ChangeView) -> str:
    if change.field in _LISTED and change.lines:  # one line per step or tool
        return "\n".join([f"{_LISTED[change.field]}:", *(f"  {line}" for line in change.lines)])
    if change.lines:
        return "\n".join([f"{change.field}:", "```", *change.lines, "```"])
    if change.field in ("schedules", "followups"):
        lines = _proactive_lines(change.field, change.before, change.after)
        return "\n".join([f"{change.field}:", *(f"  {line}" for line in lines)])
    before, after = change.before, change.after
    if change.field == "handoff":  # one line each side: where, timeout, the model's tool
        shown = [
            handoff_summary(Handoff.model_validate(v)) if v else "none" for v in (before, after)
        ]
        return f"handoff: {shown[0]} → {shown[1]}"
    if isinstance(before, dict | None) and isinstance(after, dict | None):  # per setting
        before, after = before or {}, after or {}  # a budget left out when unset is None
        keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
        return "\n".join(
            f"{change.field}.{key}: {_setting(before.get(key))} → {_setting(after.get(key))}"
            for key in keys
        )
    return f"{change.field}: {_value(before)} → {_value(after)}"


def _setting(value: Any) -> str:
    """A guardrail or budget setting: one left out (unset, or false) is off."""
    if value is None or isinstance(value, bool):
        return "on" if value else "off"
    return _value(value)


def diff(view: DiffView) -> Answer:
    """What changed between two versions of a bot (`/diff`)."""
    header = f"*{view.bot}*: {view.before} → {view.after}"
    if not view.changes:
        return Answer(text=f"{header}\nNo differences between {view.before} and {view.after}.")
    return Answer(text=_lines(header, (_change(c) for c in view.changes)))


def _case(result: CaseResult) -> list[str]:
    mark = "✓" if result.outcome == "pass" else "✗"
    rows = [f"{mark} {result.number}. {_quoted(result.input)} — {result.expect}"]
    if result.outcome != "pass":
        if result.answer:
            rows.append(f"   answer: {_quoted(result.answer, _ANSWER_PREVIEW)}")
        label = "error" if result.outcome == "error" else "why"
        rows.append(f"   {label}: {one_line(result.reason or _NONE, _ANSWER_PREVIEW)}")
    return rows


def _add_test_hint(bot: str) -> str:
    return f'Add one: `/test {bot} add "INPUT" expect contains "VALUE"`'


def test_report(report: TestReport) -> Answer:
    """The outcome of `/test BOT`: a summary, then each case (failures with answer and reason)."""
    if not report.results:
        return Answer(text=f"*{report.bot}* has no test cases yet. {_add_test_hint(report.bot)}")
    header = f"*{report.bot}* tests: {report.passed} passed, {report.failed} failed"
    rows = [row for result in report.results for row in _case(result)]
    fields = (
        Field(label="Passed", value=str(report.passed)),
        Field(label="Failed", value=str(report.failed)),
        Field(label="Draft", value=short_hash(report.spec_hash)),
    )
    return Answer(text=_lines(header, rows), fields=fields)


def not_promoted(report: TestReport) -> str:
    """Why a promotion that ran the draft's tests stopped: the failing cases, on one line."""
    failing = [r for r in report.results if r.outcome != "pass"]
    named = "; ".join(
        f"{r.number}. {_quoted(r.input, _VALUE_PREVIEW)}: {one_line(r.reason, _INPUT_PREVIEW)}"
        for r in failing[:3]
    )
    more = f"; {len(failing) - 3} more" if len(failing) > 3 else ""
    return (
        f"Not promoted: {report.bot}'s tests did not pass on this draft ({report.passed} passed, "
        f"{report.failed} failed: {named}{more}). Fix the draft or the tests and promote again "
        "(an owner may --force)."
    )


def test_cases(bot: str, cases: list[TestCase]) -> Answer:
    """The draft's test cases, numbered as `/test BOT remove N` expects."""
    if not cases:
        return Answer(text=f"*{bot}* has no test cases yet. {_add_test_hint(bot)}")
    rows = (
        f"{n}. {' / '.join(_quoted(turn) for turn in case.turns)} → {_expectation(case.expect)}"
        + (f" from step '{case.step}'" if case.step else "")
        for n, case in enumerate(cases, start=1)
    )
    return Answer(text=_lines(f"*{bot}* has {plural(len(cases), 'test case')}:", rows))


# Named like tests: keep pytest from collecting them where a test module imports them.
test_report.__test__ = False  # type: ignore[attr-defined]
test_cases.__test__ = False  # type: ignore[attr-defined]


# -- stats -----------------------------------------------------------------------------------


def _errors(view: StatsView) -> str:
    return f"{view.errors:,} ({view.error_rate:.1%})"


def _ms(value: float | None) -> str:
    return _NONE if value is None else f"{value:,.0f}"


def _cost(view: StatsView | UsageView) -> str:
    if view.cost_usd is None:
        return "unknown"
    cost = f"${view.cost_usd:.4f}"
    if view.unknown_cost_turns:
        cost += f" ({plural(view.unknown_cost_turns, 'turn')} at unknown price)"
    return cost


_MOST_VERSIONS = 4  # lines of `/stats BOT`'s breakdown by version; the older are counted


def _usage(usage: UsageView) -> str:
    """One version's or channel's turns, prompt + completion tokens and cost, in a line."""
    tokens = f"{usage.prompt_tokens:,} + {usage.completion_tokens:,} tokens"
    return f"{plural(usage.turns, 'turn')} · {tokens} · cost {_cost(usage)}"


def _breakdown(view: StatsView) -> tuple[Field, ...]:
    """A field per version (the newest) and per channel, when more than one answered."""
    fields: list[Field] = []
    if len(view.versions) > 1:
        shown, older = view.versions[:_MOST_VERSIONS], view.versions[_MOST_VERSIONS:]
        fields += [
            Field(label="no version" if v.version is None else f"v{v.version}", value=_usage(v))
            for v in shown
        ]
        if older:
            turns = plural(sum(v.turns for v in older), "turn")
            fields.append(Field(label="older", value=f"{turns} of {plural(len(older), 'version')}"))
    if len(view.channels) > 1:
        fields += [Field(label=f"on {c.channel}", value=_usage(c)) for c in view.channels]
    return tuple(fields)


def _stats_fields(view: StatsView) -> tuple[Field, ...]:
    return (
        Field(label="Turns", value=f"{view.turns:,}"),
        Field(label="Conversations", value=f"{view.conversations:,}"),
        Field(label="Users", value=f"{view.users:,}"),
        Field(label="Errors", value=_errors(view)),
        *((Field(label="Blocked", value=f"{view.blocked:,}"),) if view.blocked else ()),
        Field(
            label="Latency p50/p95",
            value=f"{_ms(view.latency_p50_ms)} / {_ms(view.latency_p95_ms)} ms",
        ),
        Field(
            label="Tokens",
            value=f"{view.prompt_tokens:,} prompt / {view.completion_tokens:,} completion",
        ),
        Field(label="Cost", value=_cost(view)),
        *((Field(label="Handoffs", value=_handoffs(view)),) if view.handoffs else ()),
        *_breakdown(view),
    )


def _handoffs(view: StatsView) -> str:
    """How many were handed to people, and their median wait for a first answer."""
    wait = view.handoff_first_answer_p50_s
    if wait is None:
        return f"{view.handoffs:,} (none answered yet)"
    return f"{view.handoffs:,} (median first answer after {_duration(wait)})"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _stats_line(view: StatsView) -> str:
    if not view.turns:
        return f"*{view.bot}* — no conversations"
    parts = (
        plural(view.turns, "turn"),
        plural(view.users, "user"),
        f"{plural(view.errors, 'error')} ({view.error_rate:.1%})",
        *((f"{view.blocked:,} blocked",) if view.blocked else ()),
        *((plural(view.handoffs, "handoff"),) if view.handoffs else ()),
        f"p95 {_ms(view.latency_p95_ms)} ms",
        f"cost {_cost(view)}",
    )
    return f"*{view.bot}* — " + " · ".join(parts)


def stats(views: list[StatsView]) -> Answer:
    """Usage of one bot (as fields) or of several (a line each) over one period (`/stats`)."""
    if not views:
        return Answer(text="No bots to report on yet. Create one with `/newbot NAME`.")
    period = period_words(views[0].period)
    if len(views) == 1:
        view = views[0]
        if not view.turns:
            return Answer(text=f"*{view.bot}*: no conversations in the last {period}.")
        return Answer(text=f"*{view.bot}* — last {period}", fields=_stats_fields(view))
    if not any(view.turns for view in views):
        return Answer(text=f"No conversations in the last {period}.")
    return Answer(text=_lines(f"Last {period}:", (_stats_line(v) for v in views)))


# -- deployments, versions, history ----------------------------------------------------------


def _where(view: DeploymentView) -> str:
    return view.url or view.target


def _deployment_env(view: DeploymentView) -> str:
    version = "no version" if view.version is None else f"v{view.version}"
    return f"{view.env} ({version})"


def deployments(views: list[DeploymentView]) -> Answer:
    """Where the team's bots run and how they are doing (`/deployments`)."""
    if not views:
        return Answer(text="No deployments yet. Put a bot on a channel with `/deploy BOT web`.")
    rows = (" · ".join((v.bot, v.channel, _deployment_env(v), v.status, _where(v))) for v in views)
    return Answer(text=_lines(f"{plural(len(views), 'deployment')}:", rows))


def deployed(view: DeploymentView) -> Answer:
    """A deployment is set up (`/deploy`): where to reach the bot, and the deployment id."""
    live = f"*{view.bot}* {_deployment_env(view)} is live"
    if view.channel == "web":
        return Answer(text=f"{live} on the web: {_where(view)}")
    text = f"{live} on {view.channel} {_where(view)} (deployment `{view.id}`)."
    if view.details:
        text += " Paste these into the platform's own settings for it:"
    fields = tuple(
        Field(label=key.replace("_", " "), value=value) for key, value in view.details.items()
    )
    return Answer(text=text, fields=fields)


def versions(bot: str, views: list[VersionView]) -> Answer:
    """The frozen versions of a bot, newest first, with the environments running each."""
    if not views:
        return Answer(
            text=f"*{bot}* has no versions yet. `/promote {bot}` freezes the draft into v1."
        )
    rows = []
    for view in sorted(views, key=lambda v: v.number, reverse=True):
        parts = [f"v{view.number}", when(view.created_at), view.created_by]
        parts.append(f"`{short_hash(view.spec_hash)}`")
        if view.environments:
            parts.append(", ".join(view.environments))
        rows.append(" · ".join(parts))
    return Answer(text=_lines(f"*{bot}* versions:", rows))


def _details(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """An audit event's before/after compactly: `key: old → new`, unchanged keys as `key: v`;
    with one side only, its non-empty values."""
    if before is None or after is None:
        one_side = before or after or {}
        parts = [f"{k}: {_value(v)}" for k, v in one_side.items() if v not in ("", [], {}, None)]
    else:
        parts = []
        for key in [*before, *(k for k in after if k not in before)]:
            old, new = before.get(key), after.get(key)
            if old == new:
                parts.append(f"{key}: {_value(new)}")
            else:
                parts.append(f"{key}: {_value(old)} → {_value(new)}")
    return one_line("; ".join(parts), _DETAILS_PREVIEW)


def history(bot: str, events: list[AuditView]) -> Answer:
    """Who changed a bot, when and how (`/history`), newest first."""
    if not events:
        return Answer(text=f"No changes recorded for *{bot}* yet.")
    rows = []
    for event in sorted(events, key=lambda e: _utc(e.at), reverse=True):
        parts = [when(event.at), event.actor, event.action]
        details = _details(event.before, event.after)
        if details:
            parts.append(details)
        rows.append(" · ".join(parts))
    return Answer(text=_lines(f"*{bot}* history:", rows))


def promoted(bot: str, result: PromoteResult, *, tests_passed: int = 0) -> Answer:
    """A promotion: staging froze a new version, or an environment now runs an existing one;
    `tests_passed`: the promotion ran the draft's tests first, and they passed."""
    if result.created:
        text = f"Froze the draft of *{bot}* into v{result.version}; {result.env} runs it now."
    else:
        text = f"*{bot}* {result.env} now runs v{result.version}."
    if tests_passed:
        text = f"The tests passed ({tests_passed} of {tests_passed}). {text}"
    if result.env == "staging":
        text += f"\nNext: `/promote {bot} production`."
    else:
        text += f"\nPut it on a channel: `/deploy {bot} web`."
    return Answer(text="\n".join([text, *result.notes]))


def rolled_back(bot: str, result: PromoteResult) -> Answer:
    """An environment points back to an earlier version (`/rollback`)."""
    text = f"*{bot}* {result.env} is back on v{result.version}."
    return Answer(text="\n".join([text, *result.notes]))


# -- help, members ---------------------------------------------------------------------------


def _command_line(command: type[Command]) -> str:
    return f"`{command.usage}` — {command.summary}"


def _matching(query: str) -> list[type[Command]]:
    """The commands named `query`, or under it (`test` covers `test add`, `test list`, …)."""
    return [c for c in COMMANDS if c.name == query or c.name.startswith(f"{query} ")]


def _command_help(command: type[Command]) -> list[str]:
    rows = [_command_line(command)]
    if command.name == "set":
        rows.append(f"Fields: {', '.join(get_args(SettableField))}.")
    if command.confirm:
        rows.append('Asks for confirmation first (a button, or reply "yes").')
    return rows


def help_text(command: str | None = None) -> Answer:
    """All commands (`/help`), one command in detail (`/help set`), or the closest names."""
    query = (command or "").strip().lstrip("/").lower()
    if not query:
        rows = [_command_line(c) for c in COMMANDS]
        rows += [
            "",
            "Commands work with or without the leading /.",
            f"You can also just say {', '.join(_NATURAL)}.",
            "`/help COMMAND` explains one command.",
        ]
        return Answer(text=_lines("*Chat Studio commands*", rows))
    matches = _matching(query)
    if matches:
        return Answer(text="\n".join(row for c in matches for row in _command_help(c)))
    names = sorted({c.name.split()[0] for c in COMMANDS})
    close = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
    text = f"There is no command `{one_line(query, _VALUE_PREVIEW)}`."
    if close:
        text += " Did you mean " + " or ".join(f"`/{name}`" for name in close) + "?"
    else:
        text += " `/help` lists them all."
    return Answer(text=text)


def members(views: list[MemberView]) -> Answer:
    """The team's members by role (owners first), then name."""
    if not views:
        return Answer(text="No members yet.")
    rank = {role: n for n, role in enumerate(get_args(RoleName))}
    ordered = sorted(views, key=lambda m: (rank.get(m.role, len(rank)), m.identity))
    rows = (f"{m.identity} · {m.role} · joined {when(m.joined_at)}" for m in ordered)
    return Answer(text=_lines(f"{plural(len(views), 'member')}:", rows))


# -- plain text ------------------------------------------------------------------------------


def _field_lines(fields: tuple[Field, ...]) -> str:
    width = max(len(f.label) for f in fields) + 1
    return "\n".join(f"{f.label + ':':<{width}} {f.value}" for f in fields)


def render_text(message: OutgoingMessage | Answer) -> str:
    """A reply as plain text (terminal, HTTP): the text, aligned `Label: value` lines, buttons
    as `[Label]` (with a "yes"/"no" hint for confirmations), and the file's name."""
    blocks = [message.text] if message.text else []
    if message.fields:
        blocks.append(_field_lines(message.fields))
    if message.buttons:
        line = " ".join(f"[{b.label}]" for b in message.buttons)
        if any(b.action.startswith(_CONFIRM_ACTIONS) for b in message.buttons):
            line += '  (or reply "yes" / "no")'
        blocks.append(line)
    if message.file is not None:
        blocks.append(f"(file: {message.file.name})")
    return "\n\n".join(blocks)


def knowledge_added(added: Added) -> Answer:
    """A source went into a draft's knowledge (or was there already)."""
    if added.unchanged:
        return Answer(text=f"*{added.bot}* already knows {added.name}; nothing changed.")
    verb = "Replaced" if added.replaced else "Added"
    return Answer(
        text=f"{verb} {added.name} in *{added.bot}*'s draft ({plural(added.chunks, 'passage')}). "
        f"Try it with `/try {added.bot} …`; `/promote {added.bot}` puts it in a version."
    )


def knowledge_reindexed(bot: str, *, sources: int, chunks: int) -> Answer:
    """`/knowledge BOT reindex` finished."""
    if not sources:
        return Answer(f"*{bot}* has no stored knowledge to re-index.")
    return Answer(
        f"Re-indexed *{bot}*'s knowledge: {plural(sources, 'source')}, "
        f"{plural(chunks, 'passage')}, searched by meaning and by keywords."
    )


def knowledge_sources(
    bot: str, sources: list[SourceView], *, reindexing: tuple[int, int] | None = None
) -> Answer:
    """The sources of a draft's knowledge (and the progress of a re-index under way)."""
    if not sources:
        return Answer(
            text=f"*{bot}* knows nothing yet. `/knowledge {bot} add TEXT|URL`, or share a file "
            "(txt, md, html, pdf, docx) with the bot's name."
        )
    rows = [f"{s.name} · {plural(s.chunks, 'passage')} · `{s.id[7:19]}`" for s in sources]
    if any(s.chunks == 0 for s in sources):  # every source read has at least one passage
        rows.append(
            "A source with 0 passages is not searched: the knowledge store has none of its "
            "passages for the current embedding model (STUDIO_EMBEDDING_MODEL changed, or the "
            "store was reset). Add the same file or text again to index it."
        )
    if reindexing is not None:
        done, total = reindexing
        rows.append(
            f"Re-indexing with keywords: {done} of {total} passages (it answers meanwhile)."
            if total
            else "Re-indexing with keywords: reading the stored passages…"
        )
    return Answer(text=_lines(f"*{bot}* knowledge ({plural(len(sources), 'source')}):", rows))


# -- participant memory ----------------------------------------------------------------------


def _remembered(value: bool | int | float | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _value(value, _PROMPT_PREVIEW) if isinstance(value, str) else str(value)


def _place(memory: ChannelMemory, user: str) -> str:
    """Where a memory row is, said the way `/memory` reads it back."""
    if memory.channel == SANDBOX:
        return f"{SANDBOX} ({memory.user}'s /try)"
    return memory.channel if memory.user == user else f"{memory.channel} ({memory.user})"


def participant_memory(view: ParticipantView) -> Answer:
    """What a bot remembers about one end user, per channel (`/memory BOT USER`)."""
    if not view.memory:
        return Answer(text=f"*{view.bot}* remembers nothing about {view.user}.")
    rows: list[str] = []
    for memory in view.memory:
        rows.append(f"On {_place(memory, view.user)}:")
        rows += (f"  {key}: {_remembered(v)}" for key, v in sorted(memory.values.items()))
    return Answer(text=_lines(f"*{view.bot}* remembers about {view.user}:", rows))


def remembered(bot: str, user: str, key: str, memory: ChannelMemory) -> Answer:
    """One value set by a builder (`/memory BOT USER set KEY VALUE`)."""
    value = _remembered(memory.values[key])
    return Answer(
        text=f"*{bot}* now remembers {key}: {value} about {user} (on {_place(memory, user)})."
    )


def forget_question(view: ParticipantView) -> str:
    """What `/memory BOT USER forget` asks before it forgets."""
    keys = sorted({key for memory in view.memory for key in memory.values})
    places = ", ".join(_place(m, view.user) for m in view.memory)
    return (
        f"Forget what *{view.bot}* remembers about {view.user} ({plural(len(keys), 'value')}: "
        f"{one_line(', '.join(keys), _PROMPT_PREVIEW)}; on {places})? Their messages stay."
    )


def memory_forgotten(view: ParticipantView) -> Answer:
    """What `/memory BOT USER forget` forgot."""
    if not view.memory:
        return Answer(text=f"*{view.bot}* remembered nothing about {view.user}; nothing changed.")
    keys = sorted({key for memory in view.memory for key in memory.values})
    places = ", ".join(_place(m, view.user) for m in view.memory)
    return Answer(
        text=f"*{view.bot}* forgot what it remembered about {view.user}: "
        f"{one_line(', '.join(keys), _PROMPT_PREVIEW)} (on {places}). Their messages are kept."
    )


# -- tools ----------------------------------------------------------------------------------


def _host(url: str | None) -> str:
    return (urlsplit(url).netloc if url else "") or "?"


def _operation_line(operation: ToolOperation) -> str:
    if not operation.changes:
        what = "reads"
    elif operation.allowed:
        what = "changes things: allowed"
    else:
        what = "changes things: not allowed"
    line = f"`{operation.function}` ({what})"
    if operation.description:
        line += f": {one_line(operation.description, 80)}"
    return line


def _tool_lines(tool: ToolSpec) -> list[str]:
    kind = "OpenAPI" if tool.kind == "openapi" else "MCP"
    where = _host(tool.base_url or tool.url)
    auth = f"secret `{tool.auth}`" if tool.auth else "no credentials"
    lines = [f"*{tool.name}* — {kind} at {where} · {auth} · {tool.timeout_s:g} s timeout"]
    lines += [f"  • {_operation_line(op)}" for op in tool.operations]
    return lines


def tool_added(bot: str, tool: ToolSpec, *, replaced: bool, revision: int) -> Answer:
    """What `/tool add` gave the draft, and what the bot may not do yet."""
    verb = "Updated" if replaced else "Added"
    count = plural(len(tool.operations), "operation")
    rows = _tool_lines(tool)
    barred = [op.function for op in tool.operations if op.changes and not op.allowed]
    if barred:
        rows.append(
            f"The bot may not run {', '.join(barred)} (they change things): add the tool again "
            "with --allow-changes to let it."
        )
    rows.append(f"Try it with /try {bot} …; end users get it once the draft is promoted.")
    return Answer(
        _lines(f"{verb} the tool with {count} on *{bot}*'s draft (revision {revision}):", rows)
    )


def tool_list(bot: str, tools: Sequence[ToolSpec]) -> Answer:
    """The draft's tools (`/tool BOT list`)."""
    if not tools:
        return Answer(
            f"*{bot}* has no tools. Add one with `/tool {bot} add OPENAPI-URL OPERATION ...` "
            f"or `/tool {bot} add-mcp URL`."
        )
    rows = [line for tool in tools for line in _tool_lines(tool)]
    return Answer(_lines(f"*{bot}*'s tools (draft):", rows))


def tool_calls(records: Sequence[ToolCallRecord]) -> str:
    """The calls of a turn, one line each (arguments as sent, secrets masked)."""
    lines = []
    for record in records:
        detail = f"{record.status}" + (f": {record.detail}" if record.detail else "")
        size = f", {record.size} B" if record.size else ""
        arguments = one_line(record.arguments, 120)
        lines.append(f"• `{record.function}` {arguments} → {detail} ({record.ms:.0f} ms{size})")
    return "Tool calls:\n" + "\n".join(lines)
