"""Schedules, follow-ups and stats reports: runs, pauses, follow-ups due, reports, and the
lookups a proactive message needs (who to send to).

Exactly once: whoever inserts an occurrence's `schedule_run` row (its unique key) sends it; the
row count of `INSERT ... ON CONFLICT DO NOTHING` decides, never a check-then-insert. While it
sends, the run is its process's (`owner`) until `lease_until`: every write of the run's progress
is conditional on the owner, and another process takes a run over only by a conditional update
once the lease has run out. Each recipient's `schedule_delivery` row, inserted with the message,
makes a run reach each recipient once however often it is resumed. A follow-up is claimed by a
conditional update of its row (the `sent` count it was read with). Writes are
plain functions of a `Connection` (`Database.run_write`, `Runtime.writes`); reads are async.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, desc, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from builders.spec import FollowUp
from storage.tables import (
    Bot,
    BotVersion,
    Conversation,
    Deployment,
    EnvironmentPointer,
    FollowUpDue,
    ScheduleDelivery,
    SchedulePause,
    ScheduleRun,
    StatsReport,
)

_run = ScheduleRun.__table__  # type: ignore[attr-defined]
_delivery = ScheduleDelivery.__table__  # type: ignore[attr-defined]
_pause = SchedulePause.__table__  # type: ignore[attr-defined]
_due = FollowUpDue.__table__  # type: ignore[attr-defined]
_report = StatsReport.__table__  # type: ignore[attr-defined]
_pointer = EnvironmentPointer.__table__  # type: ignore[attr-defined]
_version = BotVersion.__table__  # type: ignore[attr-defined]
_bot = Bot.__table__  # type: ignore[attr-defined]
_dep = Deployment.__table__  # type: ignore[attr-defined]
_conv = Conversation.__table__  # type: ignore[attr-defined]

ENVIRONMENTS = ("staging", "production")  # the environments whose versions' schedules run
# How long a run stays its sender's without news: the sender renews it with each batch and at
# least every LEASE / 4 while a batch goes out. Another process takes a run over (a crash, a
# leader that lost its lock) this long after the last renewal at most; long enough that no
# write of a live sender is ever that late.
LEASE = timedelta(minutes=2)


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _dialect(conn: Connection) -> Any:
    return sqlite if conn.dialect.name == "sqlite" else postgresql


# -- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    bot_id: int
    env: str
    schedule_id: str
    due_at: datetime
    status: str  # sending, sent, failed, skipped
    sent: int
    failed: int
    cursor: int | None
    error: str | None
    started_at: datetime


def _run_row(row: Any) -> RunRow:
    return RunRow(
        id=row.id,
        bot_id=row.bot_id,
        env=row.env,
        schedule_id=row.schedule_id,
        due_at=aware(row.due_at),
        status=row.status,
        sent=row.sent,
        failed=row.failed,
        cursor=row.cursor,
        error=row.error,
        started_at=aware(row.started_at),
    )


def claim_run(
    conn: Connection,
    *,
    bot_id: int,
    env: str,
    schedule_id: str,
    due_at: datetime,
    status: str = "sending",
    error: str | None = None,
    owner: str,
    now: datetime,
) -> int | None:
    """Record the occurrence due at `due_at`; its id, or None when it was recorded already
    (by this process earlier, or by another): then it is not this caller's to send. A run
    `sending` is `owner`'s for a `LEASE`."""
    sending = status == "sending"
    statement = (
        _dialect(conn)
        .insert(_run)
        .values(
            bot_id=bot_id,
            env=env,
            schedule_id=schedule_id,
            due_at=due_at.astimezone(UTC),
            status=status,
            sent=0,
            failed=0,
            error=error[:500] if error else None,
            started_at=now,
            finished_at=None if sending else now,
            owner=owner if sending else None,
            lease_until=now + LEASE if sending else None,
        )
        .on_conflict_do_nothing(index_elements=["bot_id", "env", "schedule_id", "due_at"])
        .returning(_run.c.id)
    )
    return conn.execute(statement).scalar()


def _owned(run_id: int, owner: str) -> Any:
    return and_(_run.c.id == run_id, _run.c.owner == owner, _run.c.status == "sending")


def progress(
    conn: Connection,
    *,
    run_id: int,
    owner: str,
    cursor: int,
    sent: int,
    failed: int,
    lease_until: datetime,
) -> bool:
    """A fan-out's batch is done: the next sender goes on after `cursor`. False: the run is
    no longer `owner`'s (another process took it over): stop."""
    result = conn.execute(
        update(_run)
        .where(_owned(run_id, owner))
        .values(cursor=cursor, sent=sent, failed=failed, lease_until=lease_until)
    )
    return bool(result.rowcount)


def renew(conn: Connection, *, run_id: int, owner: str, lease_until: datetime) -> bool:
    """Keep the run while a long batch goes out; False: it is no longer `owner`'s."""
    result = conn.execute(update(_run).where(_owned(run_id, owner)).values(lease_until=lease_until))
    return bool(result.rowcount)


def release(conn: Connection, *, run_id: int, owner: str) -> None:
    """Stopped before the end (shutdown, leadership lost): the next leader may go on at once."""
    conn.execute(update(_run).where(_owned(run_id, owner)).values(lease_until=None))


def take_run(conn: Connection, *, run_id: int, owner: str, now: datetime) -> bool:
    """Take over a run left `sending` whose lease has run out (or was released); the row count
    decides, so two processes (or two passes of one) never both go on with it."""
    result = conn.execute(
        update(_run)
        .where(
            _run.c.id == run_id,
            _run.c.status == "sending",
            or_(_run.c.lease_until.is_(None), _run.c.lease_until < now),
        )
        .values(owner=owner, lease_until=now + LEASE)
    )
    return bool(result.rowcount)


def finish_run(
    conn: Connection,
    *,
    run_id: int,
    owner: str,
    status: str,
    sent: int,
    failed: int,
    error: str | None,
    now: datetime,
) -> bool:
    """False: the run is no longer `owner`'s (another process finishes it)."""
    result = conn.execute(
        update(_run)
        .where(_owned(run_id, owner))
        .values(
            status=status,
            sent=sent,
            failed=failed,
            error=error[:500] if error else None,
            finished_at=now,
            lease_until=None,
        )
    )
    return bool(result.rowcount)


async def unfinished_runs(conn: AsyncConnection, *, now: datetime) -> list[RunRow]:
    """Runs still `sending` that nobody holds at `now` (a restart, a change of leader): the
    candidates to take over (`take_run` decides)."""
    query = (
        select(_run)
        .where(
            _run.c.status == "sending",
            or_(_run.c.lease_until.is_(None), _run.c.lease_until < now),
        )
        .order_by(_run.c.id)
    )
    return [_run_row(row) for row in (await conn.execute(query)).all()]


# Built once per dialect: a fan-out runs it for every recipient.
_DELIVER = {
    dialect.dialect.name: dialect.insert(_delivery).on_conflict_do_nothing(
        index_elements=["run_id", "deployment_id", "user"]
    )
    for dialect in (sqlite, postgresql)
}


def deliver_once(conn: Connection, *, run_id: int, deployment_id: str, user: str) -> bool:
    """Mark the run's message as kept for this recipient, in the transaction that keeps it;
    False: it was kept already (the run was resumed, or another process sent it)."""
    row = {"run_id": run_id, "deployment_id": deployment_id, "user": user}
    return bool(conn.execute(_DELIVER[conn.dialect.name], row).rowcount)


async def delivered(conn: AsyncConnection, *, run_id: int, deployment_id: str, user: str) -> bool:
    """Whether the run's message was kept for this recipient already."""
    query = select(_delivery.c.run_id).where(
        _delivery.c.run_id == run_id,
        _delivery.c.deployment_id == deployment_id,
        _delivery.c.user == user,
    )
    return (await conn.execute(query)).first() is not None


KEEP_RUNS = timedelta(days=30)


def expire(conn: Connection, *, before: datetime) -> None:
    """Forget the deliveries of runs finished before `before`, and those runs but the latest
    of each schedule (its row keeps the occurrence from being fired again after a restart)."""
    old = select(_run.c.id).where(_run.c.status != "sending", _run.c.finished_at < before)
    conn.execute(delete(_delivery).where(_delivery.c.run_id.in_(old)))
    latest = select(func.max(_run.c.id)).group_by(_run.c.bot_id, _run.c.env, _run.c.schedule_id)
    conn.execute(delete(_run).where(_run.c.id.in_(old), _run.c.id.not_in(latest)))


async def latest_runs(conn: AsyncConnection, bot_id: int) -> dict[tuple[str, str], RunRow]:
    """The latest run of each (environment, schedule id) of a bot."""
    latest = (
        select(func.max(_run.c.id))
        .where(_run.c.bot_id == bot_id)
        .group_by(_run.c.env, _run.c.schedule_id)
        .scalar_subquery()
    )
    query = select(_run).where(_run.c.id.in_(latest))
    rows = [_run_row(row) for row in (await conn.execute(query)).all()]
    return {(row.env, row.schedule_id): row for row in rows}


# -- pauses ----------------------------------------------------------------------------------


def pause(conn: Connection, *, bot_id: int, schedule_id: str, by: str, now: datetime) -> bool:
    """False: it was paused already."""
    statement = (
        _dialect(conn)
        .insert(_pause)
        .values(bot_id=bot_id, schedule_id=schedule_id, paused_by=by[:200], paused_at=now)
        .on_conflict_do_nothing(index_elements=["bot_id", "schedule_id"])
    )
    return bool(conn.execute(statement).rowcount)


def resume(conn: Connection, *, bot_id: int, schedule_id: str) -> bool:
    """False: it was not paused."""
    result = conn.execute(
        delete(_pause).where(_pause.c.bot_id == bot_id, _pause.c.schedule_id == schedule_id)
    )
    return bool(result.rowcount)


async def paused(conn: AsyncConnection, bot_id: int) -> set[str]:
    query = select(_pause.c.schedule_id).where(_pause.c.bot_id == bot_id)
    return set((await conn.execute(query)).scalars())


async def is_paused(conn: AsyncConnection, bot_id: int, schedule_id: str) -> bool:
    query = select(_pause.c.bot_id).where(
        _pause.c.bot_id == bot_id, _pause.c.schedule_id == schedule_id
    )
    return (await conn.execute(query)).first() is not None


# -- what runs where -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointerRow:
    """An environment's pointer: the version it runs since `moved_at`."""

    bot_id: int
    team_id: int
    env: str
    version_id: int
    number: int
    moved_at: datetime


async def pointers(conn: AsyncConnection, bot_id: int | None = None) -> list[PointerRow]:
    """The staging and production pointers (of every bot, or of `bot_id`)."""
    query = (
        select(
            _pointer.c.bot_id,
            _bot.c.team_id,
            _pointer.c.env,
            _pointer.c.version_id,
            _version.c.number,
            _pointer.c.updated_at,
        )
        .join(_version, _version.c.id == _pointer.c.version_id)
        .join(_bot, _bot.c.id == _pointer.c.bot_id)
        .where(_pointer.c.env.in_(ENVIRONMENTS))
    )
    if bot_id is not None:
        query = query.where(_pointer.c.bot_id == bot_id)
    rows = (await conn.execute(query)).all()
    return [PointerRow(b, t, e, v, n, aware(m)) for b, t, e, v, n, m in rows]


async def version_schedules(conn: AsyncConnection, version_id: int) -> list[dict[str, Any]]:
    """A version's `schedules` as stored (validated by the caller)."""
    spec = (await conn.execute(select(_version.c.spec).where(_version.c.id == version_id))).scalar()
    found = (spec or {}).get("schedules") or []
    return [item for item in found if isinstance(item, dict)]


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: str
    team_id: int
    bot_id: int
    channel: str
    env: str
    target: str


async def deployments(
    conn: AsyncConnection, *, bot_id: int, env: str | None = None, channel: str | None = None
) -> list[DeploymentRow]:
    """A bot's deployments (of an environment, on a channel), oldest first."""
    query = select(
        _dep.c.id, _dep.c.team_id, _dep.c.bot_id, _dep.c.channel, _dep.c.env, _dep.c.target
    ).where(_dep.c.bot_id == bot_id)
    if env is not None:
        query = query.where(_dep.c.env == env)
    if channel is not None:
        query = query.where(_dep.c.channel == channel)
    rows = (await conn.execute(query.order_by(_dep.c.created_at, _dep.c.id))).all()
    return [DeploymentRow(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Recipient:
    """An end user's conversation a proactive message goes to."""

    conversation_id: int
    deployment_id: str
    channel: str
    key: str
    user: str


# The `user` of a conversation a schedule opens in a channel (a Slack post to `#general`): a
# place, so never one of the end users a schedule without `to` sends to.
PLACE_USER = "place:"
_RECIPIENT = (_conv.c.id, _conv.c.deployment_id, _conv.c.channel, _conv.c.key, _conv.c.user)


async def audience(
    conn: AsyncConnection, *, deployment_ids: Sequence[str], after: int, limit: int
) -> list[Recipient]:
    """The next `limit` end users of these deployments after conversation id `after` (keyset,
    by conversation id): the latest open conversation of each (deployment, user)."""
    if not deployment_ids:
        return []
    latest = (
        select(func.max(_conv.c.id).label("id"))
        .where(
            _conv.c.deployment_id.in_(list(deployment_ids)),
            _conv.c.ended_at.is_(None),
            _conv.c.sandbox.is_(False),
            _conv.c.user.not_like(f"{PLACE_USER}%"),
        )
        .group_by(_conv.c.deployment_id, _conv.c.user)
        .having(func.max(_conv.c.id) > after)
        .subquery()
    )
    query = (
        select(*_RECIPIENT)
        .join(latest, latest.c.id == _conv.c.id)
        .order_by(_conv.c.id)
        .limit(limit)
    )
    return [Recipient(*row) for row in (await conn.execute(query)).all()]


async def latest_conversation(
    conn: AsyncConnection,
    *,
    deployment_ids: Sequence[str],
    key: str | None = None,
    user: str | None = None,
) -> Recipient | None:
    """The latest conversation (open or ended) at one of these deployments with that key or
    that end user; None when there is none."""
    if not deployment_ids:
        return None
    query = select(*_RECIPIENT).where(
        _conv.c.deployment_id.in_(list(deployment_ids)), _conv.c.sandbox.is_(False)
    )
    if key is not None:
        query = query.where(_conv.c.key == key)
    if user is not None:
        query = query.where(_conv.c.user == user)
    row = (await conn.execute(query.order_by(desc(_conv.c.id)).limit(1))).first()
    return Recipient(*row) if row is not None else None


# -- follow-ups ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arming:
    """The follow-ups of one conversation after a live answer (none: cancel what was left)."""

    bot_id: int
    deployment_id: str
    conversation_key: str
    address: dict[str, Any]
    version: int
    followups: tuple[FollowUp, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class FollowUpRow:
    id: int
    bot_id: int
    deployment_id: str
    conversation_key: str
    address: dict[str, Any]
    followup_id: str
    message: str
    after_minutes: int
    times: int
    sent: int
    version: int | None
    due_at: datetime


def arm(conn: Connection, arming: Arming) -> None:
    """Replace the conversation's follow-ups with fresh ones (nothing sent yet), due
    `after_minutes` from `arming.at`."""
    cancel_followups(
        conn, deployment_id=arming.deployment_id, conversation_key=arming.conversation_key
    )
    if not arming.followups:
        return
    conn.execute(
        insert(_due),
        [
            {
                "bot_id": arming.bot_id,
                "deployment_id": arming.deployment_id,
                "conversation_key": arming.conversation_key,
                "address": arming.address,
                "followup_id": item.id,
                "message": item.message,
                "after_minutes": item.after_minutes,
                "times": item.times,
                "sent": 0,
                "version": arming.version,
                "due_at": arming.at + timedelta(minutes=item.after_minutes),
            }
            for item in arming.followups
        ],
    )


def cancel_followups(conn: Connection, *, deployment_id: str, conversation_key: str) -> None:
    conn.execute(
        delete(_due).where(
            _due.c.deployment_id == deployment_id, _due.c.conversation_key == conversation_key
        )
    )


async def due_followups(conn: AsyncConnection, *, now: datetime, limit: int) -> list[FollowUpRow]:
    query = select(_due).where(_due.c.due_at <= now).order_by(_due.c.due_at, _due.c.id)
    rows = (await conn.execute(query.limit(limit))).all()
    return [
        FollowUpRow(
            id=row.id,
            bot_id=row.bot_id,
            deployment_id=row.deployment_id,
            conversation_key=row.conversation_key,
            address=row.address,
            followup_id=row.followup_id,
            message=row.message,
            after_minutes=row.after_minutes,
            times=row.times,
            sent=row.sent,
            version=row.version,
            due_at=aware(row.due_at),
        )
        for row in rows
    ]


def claim_followup(conn: Connection, row: FollowUpRow, *, now: datetime) -> bool:
    """Take one sending of a follow-up as it was read (`row.sent`): the next one becomes due
    `after_minutes` from `now`, or the row goes after its last. False: another process took it,
    or the end user spoke meanwhile (the row was replaced)."""
    # The due time too: SQLite may give a re-armed row the id of the one it replaced.
    same = and_(_due.c.id == row.id, _due.c.sent == row.sent, _due.c.due_at == row.due_at)
    if row.sent + 1 >= row.times:
        return bool(conn.execute(delete(_due).where(same)).rowcount)
    result = conn.execute(
        update(_due)
        .where(same)
        .values(sent=row.sent + 1, due_at=now + timedelta(minutes=row.after_minutes))
    )
    return bool(result.rowcount)


def drop_followup(conn: Connection, followup_row_id: int) -> None:
    conn.execute(delete(_due).where(_due.c.id == followup_row_id))


# -- stats reports ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: int
    team_id: int
    bot_id: int
    cron: str
    tz: str
    period: str
    address: dict[str, Any]
    place: str
    created_at: datetime


def put_report(
    conn: Connection,
    *,
    team_id: int,
    bot_id: int,
    cron: str,
    tz: str,
    period: str,
    address: dict[str, Any],
    place: str,
    by: str,
    now: datetime,
) -> int:
    """Add a report, or replace the bot's report at the same place (it keeps its id); its id."""
    values = {"cron": cron, "tz": tz, "period": period, "address": address, "created_by": by[:200]}
    found = conn.execute(
        select(_report.c.id).where(_report.c.bot_id == bot_id, _report.c.place == place)
    ).scalar()
    if found is not None:
        conn.execute(update(_report).where(_report.c.id == found).values(**values, created_at=now))
        return int(found)
    result = conn.execute(
        insert(_report).values(
            team_id=team_id, bot_id=bot_id, place=place[:200], created_at=now, **values
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def remove_report(conn: Connection, *, bot_id: int, report_id: int) -> bool:
    result = conn.execute(
        delete(_report).where(_report.c.id == report_id, _report.c.bot_id == bot_id)
    )
    return bool(result.rowcount)


async def reports(conn: AsyncConnection, bot_id: int | None = None) -> list[ReportRow]:
    """The stats reports (of every bot, or of `bot_id`), oldest first."""
    query = select(_report).order_by(_report.c.id)
    if bot_id is not None:
        query = query.where(_report.c.bot_id == bot_id)
    return [
        ReportRow(
            id=row.id,
            team_id=row.team_id,
            bot_id=row.bot_id,
            cron=row.cron,
            tz=row.tz,
            period=row.period,
            address=row.address,
            place=row.place,
            created_at=aware(row.created_at),
        )
        for row in (await conn.execute(query)).all()
    ]
