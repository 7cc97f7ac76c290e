"""The book: every schedule that runs now, and when each occurrence is due.

A schedule belongs to a version; each environment runs the schedules of the version it points
at, from the moment its pointer moved (`since`: earlier occurrences are never fired). The book
is rebuilt from the pointers (and the Studio's stats reports), so a promotion or a rollback
done by any process switches what runs; only pointers that moved are read again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from builders.cron import CronError, next_fire, time_zone
from builders.spec import Schedule
from runtime.scheduler.types import Report
from storage import schedules as store
from storage.database import Database

logger = logging.getLogger(__name__)

STUDIO_ENV = "studio"  # the runs of the Studio's stats reports
REPORT_GRACE_MINUTES = 60
# How far back the latest occurrence is looked for, widening: a per-minute schedule is found in
# the first window, a yearly one in the last, and no window walks more than a few thousand fires.
_WINDOWS = (
    timedelta(minutes=2),
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=35),
    timedelta(days=400),
)


def report_run_id(report_id: int) -> str:
    return f"report-{report_id}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One schedule of one environment (or one stats report) as it runs now."""

    bot_id: int
    team_id: int
    env: str  # staging, production, or studio (a stats report)
    run_id: str  # the schedule's id, or report-{id}
    cron: str
    tz: str
    grace_minutes: int
    since: datetime  # occurrences at or before this are never fired
    version: int | None = None
    schedule: Schedule | None = None
    report: Report | None = None

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.bot_id, self.env, self.run_id)

    @property
    def job_id(self) -> str:
        return f"schedule:{self.bot_id}:{self.env}:{self.run_id}"


def next_due(cron: str, tz: str, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after`. When clocks go back, a schedule at set
    hours fires once, at the first of the two times its hour happens (as cron does); one that
    runs every hour keeps running by the hour."""
    fire = next_fire(cron, tz, after)
    while fire is not None and _repeated(fire, cron, tz):
        fire = next_fire(cron, tz, fire)
    return fire


def _repeated(fire: datetime, cron: str, tz: str) -> bool:
    local = fire.astimezone(time_zone(tz))
    if not local.fold or local.replace(fold=0).utcoffset() == local.utcoffset():
        return False  # not the second pass through a wall-clock hour
    hours = cron.split()[1]
    return "*" not in hours and "/" not in hours


def latest_due(cron: str, tz: str, *, after: datetime, now: datetime) -> datetime | None:
    """The latest occurrence strictly after `after` and at or before `now` (None: none)."""
    if now <= after:
        return None
    for window in _WINDOWS:
        start = max(after, now - window)
        found: datetime | None = None
        fire = next_due(cron, tz, start)
        while fire is not None and fire <= now:
            found = fire
            fire = next_due(cron, tz, fire)
        if found is not None or start == after:
            return found
    return None


def schedules_of(stored: list[dict[str, Any]]) -> list[Schedule]:
    """A version's schedules (a stored one that no longer validates is left out, and logged)."""
    found = []
    for item in stored:
        try:
            found.append(Schedule.model_validate(item))
        except (ValidationError, CronError) as exc:
            logger.warning("a stored schedule is not valid: %s", exc)
    return found


class Book:
    """The entries that run now; `refresh` reads what changed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pointers: dict[tuple[int, str], tuple[int, datetime]] = {}
        self._by_pointer: dict[tuple[int, str], list[Entry]] = {}
        self._reports: list[Entry] = []
        self.loaded = False

    def entries(self) -> list[Entry]:
        found = [entry for entries in self._by_pointer.values() for entry in entries]
        return found + self._reports

    def entry(self, bot_id: int, env: str, run_id: str) -> Entry | None:
        for entry in self._by_pointer.get((bot_id, env), []):
            if entry.run_id == run_id:
                return entry
        return next((e for e in self._reports if e.key == (bot_id, env, run_id)), None)

    async def refresh(self) -> bool:
        """Read the pointers (and the versions of those that moved) and the reports; whether
        anything that runs changed."""
        before = {entry.key: entry for entry in self.entries()}
        async with self.db.read_conn() as conn:
            pointers = await store.pointers(conn)
            seen: set[tuple[int, str]] = set()
            for pointer in pointers:
                where = (pointer.bot_id, pointer.env)
                seen.add(where)
                mark = (pointer.version_id, pointer.moved_at)
                if self._pointers.get(where) == mark:
                    continue
                stored = await store.version_schedules(conn, pointer.version_id)
                self._pointers[where] = mark
                self._by_pointer[where] = [
                    Entry(
                        bot_id=pointer.bot_id,
                        team_id=pointer.team_id,
                        env=pointer.env,
                        run_id=schedule.id,
                        cron=schedule.cron,
                        tz=schedule.tz,
                        grace_minutes=schedule.grace_minutes,
                        since=pointer.moved_at,
                        version=pointer.number,
                        schedule=schedule,
                    )
                    for schedule in schedules_of(stored)
                ]
            for gone in set(self._pointers) - seen:
                del self._pointers[gone]
                del self._by_pointer[gone]
            self._reports = [report_entry(row) for row in await store.reports(conn)]
        self.loaded = True
        return before != {entry.key: entry for entry in self.entries()}


def report_entry(row: store.ReportRow) -> Entry:
    report = Report(
        id=row.id,
        team_id=row.team_id,
        bot_id=row.bot_id,
        cron=row.cron,
        tz=row.tz,
        period=row.period,
        address=dict(row.address),
        place=row.place,
    )
    return Entry(
        bot_id=row.bot_id,
        team_id=row.team_id,
        env=STUDIO_ENV,
        run_id=report_run_id(row.id),
        cron=row.cron,
        tz=row.tz,
        grace_minutes=REPORT_GRACE_MINUTES,
        since=row.created_at,
        report=report,
    )
