"""Live A/B tests of a bot's environments (`ab_test`). At most one runs per environment: the
partial unique index on running tests decides, never a check-then-insert.

A test's results are read from the answers that carry its id (`message.ab_test_id`, `variant`),
the ratings of those answers (`feedback`) and their online-evaluation scores (`turn_score`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row, and_, desc, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.schedules import aware
from storage.tables import (
    AbTest,
    BotVersion,
    Conversation,
    EnvironmentPointer,
    Feedback,
    Message,
    TurnScore,
    utcnow,
)

_ab = AbTest.__table__  # type: ignore[attr-defined]
_pointer = EnvironmentPointer.__table__  # type: ignore[attr-defined]
_version = BotVersion.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_conv = Conversation.__table__  # type: ignore[attr-defined]
_feedback = Feedback.__table__  # type: ignore[attr-defined]
_score = TurnScore.__table__  # type: ignore[attr-defined]

RUNNING = "running"
ENDED_STATUSES = ("stopped", "ended", "promoted")
# Latencies and online scores read per variant (the most recent): enough for percentiles and a
# rank test.
MAX_LATENCIES = 20_000
MAX_SCORES = 20_000
# Answers are found through the (bot, time) index from a little before the test started, so a
# writer whose clock is slightly behind loses none.
_CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class RunningTest:
    id: int
    version_a: int
    version_b: int
    percent: int


TestStatus = Literal["running", "stopped", "ended", "promoted"]


@dataclass(frozen=True, slots=True)
class AbTestRow:
    """A live A/B test of a bot's environment: `percent`% of its end users get `version_b`, the
    others `version_a` (what the environment ran when the test started). Also what REST shows of
    a test (its schema): times are in UTC, with their offset."""

    id: int
    env: str
    version_a: int
    version_b: int
    percent: int
    status: TestStatus
    started_by: str
    started_at: datetime
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None

    @property
    def running(self) -> bool:
        return self.status == RUNNING


_COLUMNS = (
    _ab.c.id,
    _ab.c.env,
    _ab.c.version_a,
    _ab.c.version_b,
    _ab.c.percent,
    _ab.c.status,
    _ab.c.started_by,
    _ab.c.started_at,
    _ab.c.ended_at,
    _ab.c.ended_by,
    _ab.c.end_reason,
)


def _test(row: Row[*tuple[Any, ...]]) -> AbTestRow:
    values = dict(row._mapping)
    for key in ("started_at", "ended_at"):
        values[key] = aware(values[key]) if values[key] is not None else None
    return AbTestRow(**values)


async def running(conn: AsyncConnection, bot_id: int, env: str) -> RunningTest | None:
    """The test running on the bot's `env`, if one is (the runtime's turn-time lookup)."""
    query = select(_ab.c.id, _ab.c.version_a, _ab.c.version_b, _ab.c.percent).where(
        _ab.c.bot_id == bot_id, _ab.c.env == env, _ab.c.status == RUNNING
    )
    row = (await conn.execute(query)).first()
    return RunningTest(*row) if row is not None else None


async def locked_version(conn: AsyncConnection, bot_id: int, env: str) -> int | None:
    """The version number the bot's `env` runs (None: none yet), its pointer locked until the
    transaction ends: read in the transaction that starts a test, no promotion moves the pointer
    before the test is in (SQLite's write transactions are serialised already; PostgreSQL's
    need the row lock)."""
    query = (
        select(_version.c.number)
        .select_from(_pointer.join(_version, _version.c.id == _pointer.c.version_id))
        .where(_pointer.c.bot_id == bot_id, _pointer.c.env == env)
        .with_for_update(of=_pointer)
    )
    # A move replaces the pointer's row (`BotRepository.set_pointer` deletes and inserts): a
    # read that waited for one finds the row it waited on gone, and reads the new one again.
    for _ in range(2):
        number = (await conn.execute(query)).scalar_one_or_none()
        if number is not None:
            return int(number)
    return None


async def start(
    conn: AsyncConnection,
    *,
    bot_id: int,
    env: str,
    version_a: int,
    version_b: int,
    percent: int,
    by: str,
) -> AbTestRow:
    """A new running test; raises IntegrityError when one already runs on the bot's `env`."""
    values = {
        "bot_id": bot_id,
        "env": env,
        "version_a": version_a,
        "version_b": version_b,
        "percent": percent,
        "status": RUNNING,
        "started_by": by,
        "started_at": utcnow(),
    }
    test_id = (await conn.execute(insert(_ab).values(**values).returning(_ab.c.id))).scalar_one()
    found = await get(conn, int(test_id))
    assert found is not None
    return found


async def end(
    conn: AsyncConnection, test_id: int, *, status: str, by: str, reason: str
) -> AbTestRow | None:
    """End test `test_id` with `status` (stopped, ended, promoted) if it still runs; the ended
    test, or None when it had ended already (someone else ended it first)."""
    if status not in ENDED_STATUSES:
        raise ValueError(f"a test ends as one of {ENDED_STATUSES}, not {status!r}")
    changed = await conn.execute(
        update(_ab)
        .where(_ab.c.id == test_id, _ab.c.status == RUNNING)
        .values(status=status, ended_at=utcnow(), ended_by=by, end_reason=reason[:300])
    )
    if changed.rowcount != 1:
        return None
    return await get(conn, test_id)


async def get(conn: AsyncConnection, test_id: int) -> AbTestRow | None:
    row = (await conn.execute(select(*_COLUMNS).where(_ab.c.id == test_id))).first()
    return _test(row) if row is not None else None


async def current(conn: AsyncConnection, bot_id: int) -> list[AbTestRow]:
    """The bot's running tests (one per environment at most), production first."""
    query = select(*_COLUMNS).where(_ab.c.bot_id == bot_id, _ab.c.status == RUNNING)
    rows = [_test(row) for row in (await conn.execute(query)).all()]
    return sorted(rows, key=lambda test: (test.env != "production", test.env))


async def last(conn: AsyncConnection, bot_id: int, env: str | None = None) -> AbTestRow | None:
    """The bot's most recently started test (on `env` when given), running or not."""
    query = select(*_COLUMNS).where(_ab.c.bot_id == bot_id)
    if env is not None:
        query = query.where(_ab.c.env == env)
    row = (await conn.execute(query.order_by(desc(_ab.c.id)).limit(1))).first()
    return _test(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class VariantStats:
    """What one variant's answers did. `errors` are failed turns (a guard's refusal is
    `blocked`); `cost_usd` sums the priced answers; `unknown_cost_turns` are answered turns
    whose model's price is unknown; `scores` are the online scores of the most recent
    MAX_SCORES scored answers, newest first; `latencies_ms` those of the most recent
    MAX_LATENCIES answered turns, ascending."""

    variant: str
    turns: int = 0
    users: int = 0
    errors: int = 0
    blocked: int = 0
    cost_usd: float = 0.0
    priced_turns: int = 0
    unknown_cost_turns: int = 0
    ups: int = 0
    downs: int = 0
    scores: tuple[float, ...] = ()
    latencies_ms: tuple[float, ...] = ()

    @property
    def rated(self) -> int:
        return self.ups + self.downs

    @property
    def cost_per_turn_usd(self) -> float | None:
        """Mean cost of the priced answers (None: none was priced)."""
        return self.cost_usd / self.priced_turns if self.priced_turns else None


async def variant_stats(conn: AsyncConnection, test: AbTestRow) -> dict[str, VariantStats]:
    """Per variant ("A", "B"): turns, users, errors, cost, ratings, scores and latencies of the
    answers given in `test` (sandbox turns never carry a test)."""
    bot_id = select(_ab.c.bot_id).where(_ab.c.id == test.id).scalar_subquery()
    answers = and_(
        _msg.c.bot_id == bot_id,
        _msg.c.created_at >= test.started_at - _CLOCK_SLACK,
        _msg.c.ab_test_id == test.id,
        _msg.c.role == "assistant",
    )
    blocked = _msg.c.error.like("blocked:%")
    person = _conv.c.channel + ":" + _conv.c.user
    totals = await conn.execute(
        select(
            _msg.c.variant,
            func.count(),
            func.count(func.distinct(person)),
            func.count(_msg.c.error),
            func.count().filter(blocked),
            func.coalesce(func.sum(_msg.c.cost_usd), 0.0),
            func.count(_msg.c.cost_usd),
            func.count().filter(and_(_msg.c.cost_usd.is_(None), _msg.c.error.is_(None))),
        )
        .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
        .where(answers)
        .group_by(_msg.c.variant)
    )
    counted = {row[0]: row[1:] for row in totals.all()}
    ratings = await conn.execute(
        select(
            _msg.c.variant,
            func.count().filter(_feedback.c.rating > 0),
            func.count().filter(_feedback.c.rating < 0),
        )
        .select_from(_msg.join(_feedback, _feedback.c.message_id == _msg.c.id))
        .where(answers)
        .group_by(_msg.c.variant)
    )
    rated = {variant: (int(ups), int(downs)) for variant, ups, downs in ratings.all()}
    stats = {}
    for variant in ("A", "B"):
        scores = await conn.execute(
            select(_score.c.score)
            .select_from(_msg.join(_score, _score.c.message_id == _msg.c.id))
            .where(answers, _msg.c.variant == variant, _score.c.score.is_not(None))
            .order_by(desc(_msg.c.id))
            .limit(MAX_SCORES)
        )
        latencies = await conn.execute(
            select(_msg.c.latency_ms)
            .where(
                answers,
                _msg.c.variant == variant,
                _msg.c.error.is_(None),
                _msg.c.latency_ms.is_not(None),
            )
            .order_by(desc(_msg.c.id))
            .limit(MAX_LATENCIES)
        )
        turns, users, errors, blocks, cost, priced, unknown = counted.get(
            variant, (0, 0, 0, 0, 0.0, 0, 0)
        )
        stats[variant] = VariantStats(
            variant,
            turns=int(turns),
            users=int(users),
            errors=int(errors) - int(blocks),
            blocked=int(blocks),
            cost_usd=float(cost),
            priced_turns=int(priced),
            unknown_cost_turns=int(unknown),
            ups=rated.get(variant, (0, 0))[0],
            downs=rated.get(variant, (0, 0))[1],
            scores=tuple(float(score) for score in scores.scalars()),
            latencies_ms=tuple(sorted(float(ms) for ms in latencies.scalars())),
        )
    return stats
