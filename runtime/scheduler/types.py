"""What the scheduler tells the Studio and REST (values; `service.Scheduler` produces them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class UnknownEndUserError(LookupError):
    """A trigger names an end user the bot has never talked to on that channel (the message
    says so, for a 404)."""


class ProactiveError(RuntimeError):
    """A proactive message could not be sent (the platform refused it; the message says why)."""


class LeftOutError(ProactiveError):
    """A proactive message was not sent on purpose (the message says why): a person of the team
    has the conversation now, or the environment does not reach the place. A schedule records
    that as skipped, not failed."""


class HandedOverError(LeftOutError):
    """A person of the team has the conversation now (an open handoff): the bot keeps quiet
    there (a trigger answers 409, not the platform's refusal)."""


@dataclass(frozen=True, slots=True)
class LastRun:
    due_at: datetime
    status: str  # sending, sent, failed, skipped
    sent: int
    failed: int
    error: str | None


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """One schedule of one environment (`env`: staging, production) as it runs now."""

    env: str
    version: int
    schedule_id: str
    next_run: datetime | None  # in the schedule's time zone; None when paused or never again
    last_run: LastRun | None
    paused: bool


@dataclass(frozen=True, slots=True)
class Sent:
    """A proactive message that went out (a trigger's answer)."""

    conversation_id: int
    text: str
    channel: str
    user: str


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """A Studio stats report (`/stats BOT daily at 9:00 in #ops`)."""

    id: int
    bot_id: int
    cron: str
    tz: str
    period: str
    place: str
    next_run: datetime | None
    last_run: LastRun | None


@dataclass(frozen=True, slots=True)
class Report:
    """A stats report as the Studio posts it: `address` is the Studio address (JSON) of the
    place (`place` names it: `#ops`, a Telegram group, a member's DM)."""

    id: int
    team_id: int
    bot_id: int
    cron: str
    tz: str
    period: str  # 24h, 7d, 30d
    address: dict[str, object]
    place: str
