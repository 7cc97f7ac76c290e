"""`/schedule`, `/followup` and scheduled `/stats` reports: the grammar, the builder model's tools,
and the feature through the Studio (transcripts over `POST /api/v1/studio/messages`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from builders.spec import BotSpec
from storage.tables import utcnow
from studio import presenters
from studio.commands import (
    Command,
    FollowUpAdd,
    FollowUpList,
    FollowUpRemove,
    ScheduleAdd,
    ScheduleList,
    SchedulePause,
    ScheduleRemove,
    ScheduleResume,
    Stats,
    StatsReportAdd,
    StatsReportRemove,
    StatsReports,
    command_for_tool,
    tool_schemas,
)
from studio.grammar import GrammarError, parse
from studio.views import BotView, ChangeView, DiffView

BOTS = ["faq-bot"]
MORNING = "0 9 * * MON-FRI"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'/schedule faq-bot "{MORNING}" "Good morning! Any questions?" to #general '
            "--tz Europe/Lisbon",
            ScheduleAdd(
                bot="faq-bot",
                cron=MORNING,
                message="Good morning! Any questions?",
                to="#general",
                tz="Europe/Lisbon",
            ),
        ),
        (
            "schedule \u201c*/5 * * * *\u201d \u201cprompt: summarise yesterday's questions\u201d",
            ScheduleAdd(cron="*/5 * * * *", message="prompt: summarise yesterday's questions"),
        ),
        (
            '/schedule it "0 9 * * *" "hi" --tz=UTC to here',
            ScheduleAdd(cron="0 9 * * *", message="hi", to="here", tz="UTC"),
        ),
        ("/schedule faq-bot list", ScheduleList(bot="faq-bot")),
        ("/schedule faq-bot", ScheduleList(bot="faq-bot")),
        ("/schedules", ScheduleList()),
        ("/schedule faq-bot pause s1", SchedulePause(bot="faq-bot", id="s1")),
        ("/schedule resume S2", ScheduleResume(id="s2")),
        ("/schedule faq-bot remove s1", ScheduleRemove(bot="faq-bot", id="s1")),
        (
            '/followup faq-bot after 30m "Still there?" times 2',
            FollowUpAdd(bot="faq-bot", after_minutes=30, message="Still there?", times=2),
        ),
        (
            "/followup after 2 hours 'Need anything else?'",
            FollowUpAdd(after_minutes=120, message="Need anything else?"),
        ),
        (
            '/followup faq-bot after 1d "prompt: nudge them" 3 times',
            FollowUpAdd(bot="faq-bot", after_minutes=1440, message="prompt: nudge them", times=3),
        ),
        ("/followup faq-bot list", FollowUpList(bot="faq-bot")),
        ("/followup faq-bot remove f1", FollowUpRemove(bot="faq-bot", id="f1")),
        (
            "/stats faq-bot daily at 9:00 in #ops",
            StatsReportAdd(bot="faq-bot", every="daily", at="09:00", place="#ops"),
        ),
        (
            "/stats faq-bot weekly on mon at 5 pm here --tz Europe/Lisbon",
            StatsReportAdd(
                bot="faq-bot",
                every="weekly",
                day="monday",
                at="17:00",
                place="here",
                tz="Europe/Lisbon",
            ),
        ),
        ("/stats daily at 9", StatsReportAdd(every="daily", at="09:00")),
        ("/stats faq-bot reports", StatsReports(bot="faq-bot")),
        ("/stats faq-bot reports remove 3", StatsReportRemove(bot="faq-bot", id=3)),
        ("/stats faq-bot 24h", Stats(bot="faq-bot", period="24h")),
        ("show the schedules of faq-bot", ScheduleList(bot="faq-bot")),
        ("what are its schedules?", ScheduleList()),
        ("pause schedule s1 of faq-bot", SchedulePause(bot="faq-bot", id="s1")),
        ("resume the schedule s1", ScheduleResume(id="s1")),
        ("list the follow-ups of faq-bot", FollowUpList(bot="faq-bot")),
        ("show the stats reports for faq-bot", StatsReports(bot="faq-bot")),
    ],
)
def test_schedule_commands_parse(text: str, expected: Command) -> None:
    assert parse(text, bots=BOTS) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/schedule faq-bot 0 9 * * * hi", "Put the CRON and the MESSAGE in quotes"),
        ('/schedule faq-bot "0 9 * * *"', "Put the CRON and the MESSAGE in quotes"),
        ("/schedule faq-bot frob", "I don't know the schedule action 'frob'."),
        ('/schedule faq-bot "0 9 * * *" "hi" to', "Say where after to"),
        ('/schedule faq-bot "0 9 * * *" "hi" --tz', "Give a time zone after --tz"),
        ('/schedule faq-bot "0 9 * * *" "hi" --every', "I don't know the option '--every'."),
        ('/schedule faq-bot "0 9 * * *" "hi" loudly', "I didn't expect 'loudly'."),
        ('/schedule faq-bot "0 9 * * *" "unclosed', "is not closed"),
        ("/schedule faq-bot pause", "Name the one schedule"),
        ("/schedule faq-bot pause Not_An_Id!", "ID is not valid."),
        ('/followup faq-bot after 31d "x"', "DURATION must be from 1 minute to 30 days."),
        ('/followup faq-bot after 0m "x"', "DURATION must be from 1 minute to 30 days."),
        ('/followup faq-bot after soon "x"', "DURATION is a number with m, h or d"),
        ("/followup faq-bot after 30m hi", "Give the DURATION, then the MESSAGE in quotes"),
        ('/followup faq-bot after 30m "x" times 11', "TIMES must be at most 10."),
        ('/followup faq-bot after 30m "x" forever', "I didn't expect 'forever'."),
        ("/followup faq-bot snooze", "I don't know the follow-up action 'snooze'."),
        ("/stats faq-bot daily at 25:00", "Say the time as HH:MM"),
        ("/stats faq-bot daily", "Say when: at 9:00"),
        ("/stats faq-bot weekly on someday at 9", "DAY is a day of the week"),
        ("/stats faq-bot daily on monday at 9", "I didn't expect 'on monday at 9'."),
        ("/stats faq-bot reports remove x", "ID is the number /stats BOT reports shows."),
    ],
)
def test_bad_schedule_input_is_one_problem_and_the_usage(text: str, says: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    assert says in raised.value.message
    assert "Usage: /" in raised.value.message


def test_the_builder_model_gets_them_as_tools() -> None:
    names = {tool["function"]["name"] for tool in tool_schemas()}
    assert {"schedule", "schedule_list", "schedule_pause", "followup", "stats_report"} <= names
    assert command_for_tool("schedule") is ScheduleAdd
    assert command_for_tool("stats_reports_remove") is StatsReportRemove
    with pytest.raises(ValidationError, match="a daily report has no day"):
        StatsReportAdd(every="daily", day="monday", at="09:00")
    with pytest.raises(ValidationError):
        FollowUpAdd(after_minutes=0, message="hi")


def test_show_and_diff_show_a_line_each() -> None:
    before = BotSpec(name="faq-bot")
    after = BotSpec.model_validate(
        {
            "name": "faq-bot",
            "schedules": [
                {"id": "s1", "cron": MORNING, "tz": "Europe/Lisbon", "message": "Good morning!"},
                {"id": "s2", "cron": "0 * * * *", "message": "prompt: news", "to": "slack:C0001"},
            ],
            "followups": [{"id": "f1", "after_minutes": 90, "message": "Still there?", "times": 2}],
        }
    )
    card = presenters.bot_card(
        BotView(name="faq-bot", revision=3, draft=after, environments={}, updated_at=utcnow())
    )
    fields = {field.label: field.value for field in card.fields}
    assert fields["Schedules"].splitlines() == [
        f's1: `{MORNING}` Europe/Lisbon → each end user: "Good morning!"',
        's2: `0 * * * *` UTC → slack:C0001: "prompt: news"',
    ]
    assert fields["Follow-ups"] == 'f1: after 1h30m of silence, up to 2 times: "Still there?"'
    changes = [
        ChangeView(
            field=name,
            before=before.model_dump(mode="json").get(name),
            after=after.model_dump(mode="json")[name],
            lines=[],
        )
        for name in ("schedules", "followups")
    ]
    shown = presenters.diff(DiffView(bot="faq-bot", before="v1", after="draft", changes=changes))
    assert shown.text.splitlines()[1:] == [
        "schedules:",
        f'  + s1: `{MORNING}` Europe/Lisbon → each end user: "Good morning!"',
        '  + s2: `0 * * * *` UTC → slack:C0001: "prompt: news"',
        "followups:",
        '  + f1: after 1h30m of silence, up to 2 times: "Still there?"',
    ]
    removed = ChangeView(
        field="schedules",
        before=after.model_dump(mode="json")["schedules"],
        after=[{**after.model_dump(mode="json")["schedules"][0], "tz": "UTC"}],
        lines=[],
    )
    lines = presenters.diff(DiffView(bot="b", before="v1", after="v2", changes=[removed])).text
    assert "  ~ s1: `0 9 * * MON-FRI` UTC" in lines and "  - s2" in lines


@pytest.mark.parametrize(
    ("minutes", "said"), [(30, "30m"), (120, "2h"), (1440, "1d"), (61, "1h1m")]
)
def test_durations_are_said_the_way_people_say_them(minutes: int, said: str) -> None:
    assert presenters.duration(minutes) == said


def test_help_explains_them() -> None:
    schedule = presenters.help_text("schedule").text
    assert "/schedule BOT pause ID" in schedule and "not available" not in schedule
    assert "/followup BOT after DURATION" in presenters.help_text("followup").text
    assert "daily|weekly" in presenters.help_text("stats").text
    assert "/schedule" not in presenters.help_text("abtest").text
