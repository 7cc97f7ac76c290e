"""`/schedule`, `/followup` and scheduled `/stats` reports: the grammar, the builder model's tools,
and the feature through the Studio (transcripts over `POST /api/v1/studio/messages`)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from builders.spec import BotSpec
from runtime.messages import IncomingMessage
from runtime.scheduler.types import ReportInfo
from storage.tables import utcnow
from studio import presenters
from studio.address import PULL_CHANNEL, studio_address
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
from studio.engine import Studio
from studio.grammar import GrammarError, parse
from studio.schedules import NOT_RUNNING
from studio.views import BotView, ChangeView, DiffView
from tests.factories import Service
from tests.people import bot_id

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
        (
            "/followup after 1h 30 min 'Need anything else?'",
            FollowUpAdd(after_minutes=90, message="Need anything else?"),
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
        ('/followup faq-bot after 1h30 "x"', "DURATION is a number with m, h or d"),
        ('/followup faq-bot after 30d1m "x"', "DURATION must be from 1 minute to 30 days."),
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


@pytest.mark.parametrize("minutes", [1, 59, 61, 90, 1439, 1441, 2190, 43199, 43200])
def test_a_duration_shown_reads_back(minutes: int) -> None:
    """What `/followup list` shows (1h30m, 1d12h30m) can be typed again."""
    said = presenters.duration(minutes)
    command = parse(f'/followup faq-bot after {said} "x"', bots=BOTS)
    assert isinstance(command, FollowUpAdd) and command.after_minutes == minutes


def test_help_explains_them() -> None:
    schedule = presenters.help_text("schedule").text
    assert "/schedule BOT pause ID" in schedule and "not available" not in schedule
    assert "/followup BOT after DURATION" in presenters.help_text("followup").text
    assert "daily|weekly" in presenters.help_text("stats").text
    abtest = presenters.help_text("abtest").text
    assert "/abtest BOT status" in abtest and "/schedule" not in abtest


# -- the feature, through the Studio -----------------------------------------------------------


async def live_web_session(service: Service) -> tuple[str, str]:
    """faq-bot live on the web, and an end user's session with it: (deployment, session)."""
    deployment = await service.live_web_bot()
    session = (await service.chat(deployment, "hello")).json()["session"]
    return deployment, str(session)


async def draft(service: Service) -> dict[str, Any]:
    return await service.call("GET", "/api/v1/bots/faq-bot")  # type: ignore[no-any-return]


async def test_a_schedule_is_added_listed_paused_and_removed_in_chat(service: Service) -> None:
    await live_web_session(service)
    added = await service.reply(f'/schedule faq-bot "{MORNING}" "Good morning!" --tz Europe/Lisbon')
    assert added.startswith("Scheduled s1 on *faq-bot*'s draft (revision 2): the message goes")
    assert "each end user of the environment at `0 9 * * MON-FRI` (Europe/Lisbon), next " in added
    assert "End users get it once you promote the draft" in added
    (stored,) = (await draft(service))["draft"]["schedules"]
    assert stored == {
        "id": "s1",
        "cron": MORNING,
        "tz": "Europe/Lisbon",
        "message": "Good morning!",
        "to": None,
        "to_name": None,
        "grace_minutes": 60,
    }
    second = await service.reply('/schedule "0 * * * *" "prompt: one line of news"')  # faq-bot
    assert "Scheduled s2" in second and "a message the bot writes from that prompt" in second
    assert "goes to each end user of the environment" in second

    listed = await service.reply("/schedule faq-bot list")
    assert "s1: `0 9 * * MON-FRI` Europe/Lisbon → each end user" in listed
    assert listed.count("not live yet: end users get it once you promote") == 2
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    listed = await service.reply("/schedule faq-bot list")
    assert "  staging v2: next " in listed and "  production v2: next " in listed
    assert "not run yet" in listed and "not live yet" not in listed

    paused = await service.reply("/schedule faq-bot pause s1")
    assert paused.startswith("Paused schedule s1 of *faq-bot* in every environment, at once")
    assert "Nothing changed" in await service.reply("pause schedule s1 of faq-bot")
    assert "  production v2: paused" in await service.reply("/schedule faq-bot list")
    assert "runs again" in await service.reply("/schedule faq-bot resume s1")
    assert "is not paused" in await service.reply("/schedule faq-bot resume s1")

    removed = await service.reply("/schedule faq-bot remove s1")
    assert removed.startswith("Removed schedule s1 from *faq-bot*'s draft (revision 4)")
    listed = await service.reply("/schedule faq-bot list")
    assert "• s1: not in the draft any more (live until you promote)" in listed
    card = await service.reply("/show faq-bot")
    assert 's2: `0 * * * *` UTC → each end user: "prompt: one line of news"' in card
    assert "- s1" in await service.reply("/diff faq-bot")


async def test_a_schedule_goes_to_a_web_session(service: Service) -> None:
    _, session = await live_web_session(service)
    added = await service.reply(f'/schedule faq-bot "0 9 * * *" "Hi" to web:{session}')
    assert f"goes to web session {session[:8]}…" in added, added
    (stored,) = (await draft(service))["draft"]["schedules"]
    assert stored["to"] == f"web:{session}"


async def test_follow_ups_are_added_listed_and_removed_in_chat(service: Service) -> None:
    await service.import_bot()
    added = await service.reply('/followup faq-bot after 30m "Still there?" times 2')
    assert added.startswith("Added follow-up f1 to *faq-bot*'s draft (revision 2): after 30m")
    assert "up to 2 times" in added and "next message cancels" in added
    for n in range(2, 6):
        assert f"follow-up f{n}" in await service.reply(f'/followup after {n}h "Hi {n}"')
    before = await draft(service)
    too_many = await service.reply('/followup faq-bot after 1d "One more"')
    assert too_many == (
        "faq-bot has 5 follow-ups, the most a bot may have: remove one first "
        "(/followup faq-bot remove ID)"
    )
    listed = await service.reply("/followup faq-bot list")
    assert '• f1: after 30m of silence, up to 2 times: "Still there?"' in listed
    assert "f5: after 5h" in listed
    assert "has no follow-up 'f9'" in await service.reply("/followup faq-bot remove f9")
    assert await draft(service) == before
    assert "Removed follow-up f1" in await service.reply("/followup faq-bot remove f1")
    assert "f1" not in await service.reply("/followup faq-bot list")
    assert "Follow-ups" in await service.reply("/show faq-bot")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('"0 9 * *" "hi"', "'0 9 * *' is not a cron expression: five fields"),
        ('"0 0 9 * * *" "hi"', "a schedule fires at most once a minute"),
        ('"61 9 * * *" "hi"', "'61 9 * * *' is not a valid cron expression"),
        ('"0 9 * * *" "hi" --tz Mars/Olympus', "unknown time zone 'Mars/Olympus'"),
        ('"0 0 30 2 *" "hi"', "'0 0 30 2 *' never fires"),
        ('"0 9 * * *" "hi" to web:nobody-there', "schedule 's1': "),
        ('"0 9 * * *" "hi" to -100123', "schedule 's1': "),
        ('"0 9 * * *" "hi" to #general', "Slack is not configured here"),
        ('"0 9 * * *" "hi" to here', "here means the channel or chat this is said in"),
        ('"0 9 * * *" "hi" to Moon!', "'Moon!' is not a place"),
        ('"0 9 * * *" "hi" to the-moon', "Slack is not configured here"),  # a bare channel name
        ('"0 9 * * *" "prompt:"', "say what the bot should write after 'prompt:'"),
    ],
)
async def test_bad_schedules_are_refused_in_one_line(
    service: Service, line: str, says: str
) -> None:
    await live_web_session(service)
    before = await draft(service)
    said = await service.reply(f"/schedule faq-bot {line}")
    assert says in said and "\n" not in said, said
    assert await draft(service) == before


async def test_roles_limits_ids_and_other_teams(service: Service) -> None:
    await service.import_bot(
        schedules=[{"id": f"s{n}", "cron": "0 9 * * *", "message": "hi"} for n in range(1, 101)]
    )
    before = await draft(service)
    full = await service.reply('/schedule faq-bot "0 9 * * *" "one more"')
    assert full.startswith("faq-bot has 100 schedules, the most a bot may have")
    assert "has no schedule 's101'" in await service.reply("/schedule faq-bot pause s101")
    assert "has no schedule 's101'" in await service.reply("/schedule faq-bot remove s101")
    assert "Schedules:" in await service.reply("/show faq-bot")
    assert "and 90 more: /schedule faq-bot list" in await service.reply("/show faq-bot")

    assert "s100" in await service.reply("/schedule faq-bot list", user="vera")  # a viewer
    for line in (
        '/schedule faq-bot "0 9 * * *" "hi"',
        "/schedule faq-bot pause s1",
        "/schedule faq-bot remove s1",
        '/followup faq-bot after 1h "hi"',
        "/stats faq-bot daily at 9:00",
    ):
        assert "needs the editor role" in await service.reply(line, user="vera"), line
    other = await service.app.state.core.ops.create_team("other")
    for line in ("/schedule faq-bot list", "/schedule faq-bot pause s1", "/stats faq-bot reports"):
        response = await service.client.post(
            "/api/v1/studio/messages", headers=service.auth(other.key), json={"text": line}
        )
        assert "No bot named 'faq-bot'" in response.json()["reply"]
    assert await draft(service) == before


async def test_a_daily_report_reaches_the_member_and_is_removed(service: Service) -> None:
    await service.import_bot()
    said = await service.reply("/stats faq-bot daily at 9:00 --tz Europe/Lisbon")
    assert said.startswith(
        "Every day at 09:00 (Europe/Lisbon) I post *faq-bot*'s stats for the last 24 hours in "
        "DM of api:owner (report "
    )
    listed = await service.reply("/stats faq-bot reports")
    assert "`0 9 * * *` Europe/Lisbon → DM of api:owner: stats of the last 24 hours" in listed
    weekly = await service.reply("/stats faq-bot weekly on friday at 17:30")
    assert weekly.startswith("Every friday at 17:30 (UTC)")  # the same place: replaced
    (line,) = [row for row in (await service.reply("/stats faq-bot reports")).splitlines()[1:]]
    assert "`30 17 * * fri` UTC" in line
    report_id = line.split(".")[0]

    scheduler = service.app.state.core.scheduler
    (report,) = await scheduler.reports(await bot_id(service, "faq-bot"))
    assert report.next_run is not None
    await scheduler.run_due(report.next_run + timedelta(seconds=1))
    posted = await service.notices()
    assert posted[-1] == (await service.say("/stats faq-bot 7d"))["reply"]  # the same answer
    assert "last " in await service.reply("/stats faq-bot reports")

    assert "no stats report 99" in await service.reply("/stats faq-bot reports remove 99")
    stopped = await service.reply(f"/stats faq-bot reports remove {report_id}")
    assert stopped == f"Stopped stats report {report_id} of *faq-bot*."
    assert "has no scheduled stats reports" in await service.reply("/stats faq-bot reports")


async def test_without_a_scheduler_the_commands_say_so(service: Service) -> None:
    await service.import_bot()
    core = service.app.state.core
    studio = Studio(
        ops=core.ops,
        runtime=core.runtime,
        llm=core.runtime.llm,
        builder_model=None,
        judge_model=None,
    )
    team_id = (await core.ops.authenticate(service.key)).team_id
    for line in (
        "/schedule faq-bot list",
        '/followup faq-bot after 1h "hi"',
        "/stats faq-bot reports",
    ):
        message = IncomingMessage(
            address=studio_address(PULL_CHANNEL, team_id, "api:owner"), text=line
        )
        (answer,) = await studio.answer(message)
        assert answer.text == NOT_RUNNING
    stored = {"id": "s1", "cron": "0 9 * * *", "message": "hi", "to": "web:abcdefgh12"}
    patched = await service.client.patch(
        "/api/v1/bots/faq-bot", json={"schedules": [stored]}, headers=service.auth()
    )
    assert patched.status_code == 501 and patched.json()["error"] == NOT_RUNNING


async def test_runs_are_shown_in_the_schedules_time_zone(service: Service) -> None:
    """The last run as the next one: in the schedule's (or the report's) zone, not UTC."""
    await live_web_session(service)
    await service.reply('/schedule faq-bot "0 9 * * *" "Good morning!" --tz Asia/Tokyo')
    await service.reply("/stats faq-bot daily at 9:00 --tz Asia/Tokyo")
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    scheduler = service.app.state.core.scheduler
    (report,) = await scheduler.reports(await bot_id(service, "faq-bot"))
    assert report.next_run is not None
    await scheduler.run_due(report.next_run + timedelta(minutes=1))  # 09:00 in Tokyo: both
    day = report.next_run.strftime("%a %Y-%m-%d")

    listed = await service.reply("/schedule faq-bot list")
    # (the scheduler's clock has not moved: the next run is still that one)
    assert f"  production v2: next {day} 09:00 JST · last {day} 09:00 JST: sent" in listed, listed
    reports = await service.reply("/stats faq-bot reports")
    assert f"· last {day} 09:00 JST: sent" in reports, reports
    await service.reply("/schedule faq-bot pause s1")  # no next run: the draft's zone still
    assert f"  production v2: paused · last {day} 09:00 JST" in (
        await service.reply("/schedule faq-bot list")
    )


async def test_the_next_run_said_on_adding_is_the_one_the_list_shows(service: Service) -> None:
    """When clocks go back (Lisbon, 27 October 2030, 02:00 WEST -> 01:00 WET), a schedule at
    01:30 fires at the first 01:30 only: at 01:00 WET the next is the next day's, in chat, by
    REST and in the list alike."""
    await live_web_session(service)
    service.app.state.core.scheduler.clock = lambda: datetime(2030, 10, 27, 1, 0, tzinfo=UTC)
    added = await service.reply('/schedule faq-bot "30 1 * * *" "hi" --tz Europe/Lisbon')
    assert "next Mon 2030-10-28 01:30 WET." in added, added
    body = {"cron": "30 1 * * *", "message": "hi", "tz": "Europe/Lisbon"}
    by_rest = await service.call("POST", "/api/v1/bots/faq-bot/schedules", json=body)
    assert datetime.fromisoformat(by_rest["next_run"]) == datetime(2030, 10, 28, 1, 30, tzinfo=UTC)
    for env in ("staging", "production"):
        await service.call("POST", "/api/v1/bots/faq-bot/promote", json={"to": env})
    listed = await service.reply("/schedule faq-bot list")
    assert listed.count("  production v2: next Mon 2030-10-28 01:30 WET") == 2, listed


async def test_a_report_set_twice_at_once_is_a_conflict_not_an_error(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage reads, then inserts: two `/stats … daily` for one place at the same moment may
    clash on its unique key (bot, place). The Studio says so in one line, not a 500."""
    await service.import_bot()
    scheduler = service.app.state.core.scheduler

    async def clashing(**_: object) -> ReportInfo:
        cause = sqlite3.IntegrityError("UNIQUE constraint failed: stats_report.bot_id")
        raise IntegrityError("INSERT INTO stats_report", None, cause)

    monkeypatch.setattr(scheduler, "add_report", clashing)
    said = await service.reply("/stats faq-bot daily at 9:00")
    assert said == (
        "Another stats report of faq-bot for DM of api:owner was set at the same moment: say it "
        "again to replace that one"
    )
