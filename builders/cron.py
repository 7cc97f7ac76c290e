"""Cron expressions and time zones of schedules, read the way people write them.

A schedule's `cron` is the standard five fields (minute hour day-of-month month day-of-week), so
nothing fires more often than once a minute; a sixth (seconds) field is refused. APScheduler 3's
`CronTrigger.from_crontab` counts weekdays from Monday = 0, unlike cron (Sunday = 0 or 7), so
the day-of-week field is turned into day names here first: `0 9 * * 1-5` is Monday to Friday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_ANY = ("*", "?")
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})  # files, not places


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    """The IANA time zone names of the system (or of the tzdata package)."""
    return frozenset(available_timezones()) - _NOT_ZONES


class CronError(ValueError):
    """Not a cron expression or time zone a schedule can use (the message says why)."""


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone called `name` (`Europe/Lisbon`, `UTC`)."""
    try:
        # Only listed names: "Europe" (a directory) or "localtime" are files, not zones.
        if name not in _zones():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(
            f"unknown time zone '{name[:60]}': use an IANA name such as Europe/Lisbon or UTC"
        ) from None


@lru_cache(maxsize=4096)
def trigger(expression: str, zone: str) -> BaseTrigger:
    """The APScheduler trigger of a five-field cron `expression` in time zone `zone`. As in
    cron, a day of the month and days of the week both given mean either (`0 9 1 * MON`: the
    1st and every Monday), where APScheduler alone would want both at once."""
    fields = expression.split()
    if len(fields) == 6:
        raise CronError(
            "a schedule fires at most once a minute: use five fields "
            "(minute hour day month weekday), without seconds"
        )
    if len(fields) != 5:
        raise CronError(
            f"'{expression[:60]}' is not a cron expression: five fields, minute hour day month "
            'weekday, e.g. "0 9 * * MON-FRI"'
        )
    minute, hour, day, month, weekday = fields
    try:
        days, tz = _weekdays(weekday), time_zone(zone)
        if day in _ANY or days == "*":
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=tz
            )
        return OrTrigger(
            [
                CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=tz),
            ]
        )
    except CronError:
        raise
    except ValueError as exc:
        raise CronError(f"'{expression[:60]}' is not a valid cron expression: {exc}") from None


def next_fire(expression: str, zone: str, after: datetime) -> datetime | None:
    """The first instant strictly after `after` at which the schedule fires (None: never)."""
    # Fire times are whole minutes: from the next second on, `after` itself is never one. In
    # UTC: arithmetic on a local time drops its `fold`, so the second pass through an hour when
    # clocks go back would become the first again (and the same fire time come back for ever).
    start = after.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)
    fire: datetime | None = trigger(expression, zone).get_next_fire_time(None, start)
    return fire


def _weekdays(field: str) -> str:
    """A cron day-of-week field as APScheduler day names: `1-5` -> `mon,tue,wed,thu,fri`."""
    if field in _ANY:
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise CronError(f"'{field}' is not a valid day of the week")
        if base == "*":
            start, end = 0, 6
        elif "-" in base:
            low, _, high = base.partition("-")
            start, end = _day(low, field), _day(high, field)
            if end == 0 and start > 0:  # `5-7`, `fri-sun`: up to Sunday
                end = 7
        else:
            start = end = _day(base, field)
            if step is not None:
                end = 6
        if start > end:
            raise CronError(f"'{field}' is not a valid day of the week (a range goes up)")
        days.update(day % 7 for day in range(start, end + 1, step or 1))
    return ",".join(_DAYS[day] for day in sorted(days))


def _day(text: str, field: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7 if text != "7" else 0
    if text[:3] in _DAYS and len(text) == 3:
        return _DAYS.index(text[:3])
    raise CronError(f"'{field}' is not a valid day of the week: use 0-7 (Sunday is 0 or 7) or MON")
