"""Cron expressions as people write them, in their time zone (`builders.cron`), and the
schedule and follow-up parts of a spec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from builders.cron import CronError, next_fire, time_zone, trigger
from builders.spec import MAX_FOLLOWUPS, MAX_SCHEDULES, FollowUp, Schedule, proactive_prompt
from builders.validation import SpecError, parse_spec


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("weekdays", "first"),
    [
        ("1-5", _at(2026, 12, 7, 9)),  # Monday (cron's 1), not Tuesday (APScheduler 3's 1)
        ("0", _at(2026, 12, 6, 9)),  # Sunday
        ("7", _at(2026, 12, 6, 9)),  # Sunday too
        ("MON-FRI", _at(2026, 12, 7, 9)),
        ("6,0", _at(2026, 12, 5, 9)),  # Saturday
        ("5-7", _at(2026, 12, 5, 9)),  # Friday to Sunday, and today's 9:00 has passed
    ],
)
def test_weekdays_count_from_sunday_as_in_cron(weekdays: str, first: datetime) -> None:
    friday_noon = _at(2026, 12, 4, 12)
    assert next_fire(f"0 9 * * {weekdays}", "UTC", friday_noon) == first


def test_the_next_run_is_strictly_after_and_in_the_time_zone() -> None:
    lisbon_morning = next_fire("0 9 * * *", "Europe/Lisbon", _at(2026, 7, 1, 8))
    assert lisbon_morning == _at(2026, 7, 2, 8)  # 9:00 summer time is 8:00 UTC: tomorrow's
    assert next_fire("* * * * *", "UTC", _at(2026, 1, 1, 0, 0)) == _at(2026, 1, 1, 0, 1)


def test_a_daily_run_keeps_its_local_hour_across_daylight_saving_time() -> None:
    fires, after = [], _at(2026, 3, 27, 12)
    for _ in range(4):
        fire = next_fire("0 9 * * *", "Europe/Lisbon", after)
        assert fire is not None
        fires.append(fire.astimezone(UTC))
        after = fire
    # Lisbon moves to summer time on Sunday 29 March 2026: 9:00 is 9:00 UTC, then 8:00 UTC.
    assert fires == [
        _at(2026, 3, 28, 9),
        _at(2026, 3, 29, 8),
        _at(2026, 3, 30, 8),
        _at(2026, 3, 31, 8),
    ]


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("* * * *", "five fields"),
        ("*/10 * * * * *", "at most once a minute"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 9 * * 8", "day of the week"),
        ("0 9 * * funday", "day of the week"),
        ("0 25 * * *", "not a valid cron expression"),
    ],
)
def test_a_bad_cron_expression_says_why(expression: str, says: str) -> None:
    with pytest.raises(CronError, match=says):
        trigger(expression, "UTC")


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus",
        "",
        "../etc/passwd",
        "/etc/localtime",
        " UTC",
        "Europe",
        "America",
        "localtime",
    ],
)
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(CronError, match="unknown time zone"):
        time_zone(zone)


def test_a_schedule_checks_its_cron_zone_target_and_prompt() -> None:
    ok = Schedule(id="s1", cron="0 9 * * 1-5", tz="Europe/Lisbon", message="Morning!")
    assert ok.prompt is None and ok.to is None
    assert Schedule(id="s2", cron="0 9 * * *", message="Prompt: sum up").prompt == "sum up"
    for to in (
        "slack:C0123ABC",
        "slack:G0PRIVATE1",
        "telegram:-1001234",
        "telegram:42",
        "web:abcdef123456",
        "web:Zx9_-a.f00d1e",
    ):
        assert Schedule(id="s3", cron="0 9 * * *", message="hi", to=to).to == to
    for bad, says in [
        ({"cron": "0 9 * *"}, "five fields"),
        ({"tz": "Nowhere/Town"}, "unknown time zone"),
        ({"to": "#general"}, "is not a place"),
        ({"to": "email:a@b.c"}, "is not a place"),
        ({"message": "prompt:  "}, "after 'prompt:'"),
        ({"message": " "}, "at least 1 character"),
        ({"grace_minutes": -1}, "greater than or equal to 0"),
    ]:
        with pytest.raises(ValueError, match=says):
            Schedule.model_validate({"id": "s1", "cron": "0 9 * * *", "message": "hi"} | bad)


def test_proactive_prompt_reads_the_prefix_only_at_the_start() -> None:
    assert proactive_prompt("prompt: what changed?") == "what changed?"
    assert proactive_prompt("PROMPT:hello") == "hello"
    assert proactive_prompt("Our prompt: none") is None


def test_a_spec_limits_and_names_its_schedules_and_follow_ups() -> None:
    schedule = {"cron": "0 9 * * *", "message": "hi"}
    with pytest.raises(SpecError, match="schedule ids must be unique"):
        parse_spec({"name": "faq-bot", "schedules": [schedule | {"id": "a"}] * 2})
    many = [schedule | {"id": f"s{i}"} for i in range(MAX_SCHEDULES + 1)]
    with pytest.raises(SpecError, match="schedules"):
        parse_spec({"name": "faq-bot", "schedules": many})
    nudges = [
        {"id": f"f{i}", "after_minutes": 30, "message": "?"} for i in range(MAX_FOLLOWUPS + 1)
    ]
    with pytest.raises(SpecError, match="followups"):
        parse_spec({"name": "faq-bot", "followups": nudges})
    with pytest.raises(ValueError, match="less than or equal to 10"):
        FollowUp(id="f", after_minutes=30, message="?", times=11)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        FollowUp(id="f", after_minutes=0, message="?")


def test_a_day_of_the_month_and_weekdays_mean_either_as_in_cron() -> None:
    after = _at(2030, 4, 2)  # a Tuesday
    fires = []
    for _ in range(4):
        fire = next_fire("0 9 1 * MON", "UTC", after)
        assert fire is not None
        fires.append(fire)
        after = fire
    assert fires == [
        _at(2030, 4, 8, 9),
        _at(2030, 4, 15, 9),
        _at(2030, 4, 22, 9),
        _at(2030, 4, 29, 9),
    ]
    assert next_fire("0 9 1 * MON", "UTC", _at(2030, 4, 29, 10)) == _at(2030, 5, 1, 9)  # the 1st
    assert next_fire("0 9 1 * *", "UTC", _at(2030, 4, 2)) == _at(2030, 5, 1, 9)
