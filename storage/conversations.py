"""Conversations and their messages: the runtime's hot path, in SQLAlchemy Core (no ORM cost).

Reads are async; writes are plain functions of a `Connection`, run by `Database.run_write`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, desc, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.sqlite_insert import SqliteInsert
from storage.tables import Conversation, Feedback, Message, utcnow

_conv = Conversation.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_fb = Feedback.__table__  # type: ignore[attr-defined]
# Built once: the hot path runs them every turn, with the values as parameters (building the
# statement with `.values(...)` each time cost half the writer's CPU of an API turn). The ids
# of the messages come back (one INSERT … RETURNING for the rows together on PostgreSQL), so an
# answer can be rated by its id.
_START_CONVERSATION = insert(_conv)
_ADD_MESSAGES = insert(_msg).returning(_msg.c.id, sort_by_parameter_order=True)
# On SQLite, the same rows through the driver (`storage.sqlite_insert`); messages one at a time,
# as SQLAlchemy runs them there to return their ids in order.
_START_ON_SQLITE = SqliteInsert(_START_CONVERSATION)
_ADD_MESSAGE_ON_SQLITE = SqliteInsert(insert(_msg).returning(_msg.c.id))
_ASSISTANT = {"human": "assistant"}


@dataclass(frozen=True, slots=True)
class NewConversation:
    bot_id: int
    deployment_id: str | None
    channel: str
    key: str
    user: str
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One stored message; `role` is `user`, `assistant`, or `human` (a person of the team
    answering during a handoff)."""

    role: str
    text: str
    version: int | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    parts: list[dict[str, Any]] | None = None
    ab_test_id: int | None = None  # the live A/B test the answer was part of, and its variant
    variant: str | None = None
    trace: dict[str, Any] | None = None  # what each step of the turn did (`runtime.trace`)


@dataclass(frozen=True, slots=True)
class Usage:
    """What answers cost and how they went: of one version on one channel, or summed."""

    turns: int = 0
    errors: int = 0  # failed turns (a guard's refusal is `blocked`, not an error)
    blocked: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # of the turns with a known price
    unknown_cost_turns: int = 0  # answered (not failed) at an unknown price

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.turns + other.turns,
            self.errors + other.errors,
            self.blocked + other.blocked,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
            self.unknown_cost_turns + other.unknown_cost_turns,
        )


@dataclass(frozen=True, slots=True)
class StatsRow:
    conversations: int
    users: int
    latencies_ms: list[float]  # the latest answers' (at most 10,000), sorted
    usage: dict[tuple[int | None, str], Usage]  # per version and channel

    @property
    def total(self) -> Usage:
        return sum(self.usage.values(), Usage())


# The active conversation at (deployment, key) and its newest message's id, in PostgreSQL's own
# SQL: what a worker reads, holding the conversation's lock, to know whether another changed it
# since it cached it (`runtime.conversation_cache`).
LATEST = (
    f"SELECT c.id, (SELECT max(m.id) FROM {_msg.name} m WHERE m.conversation_id = c.id)"
    f" FROM {_conv.name} c WHERE c.deployment_id = $1 AND c.key = $2 AND c.ended_at IS NULL"
    " ORDER BY c.id DESC LIMIT 1"
)

# A conversation's history messages after id $2 up to id $3, the newest $4 of them, newest first
# (`oldest_first` turns them), in PostgreSQL's own SQL: what a worker holding the conversation's
# lock reads on that lock's connection to bring its cached history up to what `LATEST` told it
# ($2 = 0: the last ones, for a history it had not cached).
RECENT = (
    f"SELECT role, text FROM {_msg.name} WHERE conversation_id = $1 AND id > $2 AND id <= $3"
    " AND error IS NULL ORDER BY id DESC LIMIT $4"
)


async def active_conversation(
    conn: AsyncConnection, deployment_id: str | None, key: str
) -> int | None:
    query = (
        select(_conv.c.id)
        .where(
            _conv.c.deployment_id == deployment_id, _conv.c.key == key, _conv.c.ended_at.is_(None)
        )
        .order_by(desc(_conv.c.id))
        .limit(1)
    )
    return (await conn.execute(query)).scalar()


async def history(conn: AsyncConnection, conversation_id: int, turns: int) -> list[tuple[str, str]]:
    """The last `turns` exchanges (user and assistant messages), oldest first."""
    if turns <= 0:
        return []
    query = (
        select(_msg.c.role, _msg.c.text)
        .where(_msg.c.conversation_id == conversation_id, _msg.c.error.is_(None))
        .order_by(desc(_msg.c.id))
        .limit(turns * 2)
    )
    return oldest_first((await conn.execute(query)).all())


def oldest_first(rows: Sequence[Sequence[Any]]) -> list[tuple[str, str]]:
    """History read newest first (role, text), as the model reads it: oldest first, and the
    team's answers during a handoff (`human`) as the bot's side of the conversation."""
    return [(_ASSISTANT.get(role, role), text) for role, text in reversed(rows)]


def start_conversation(conn: Connection, new: NewConversation) -> int:
    row = {
        "bot_id": new.bot_id,
        "deployment_id": new.deployment_id,
        "channel": new.channel,
        "key": new.key,
        "user": new.user,
        "sandbox": new.sandbox,
        "started_at": utcnow(),
    }
    if conn.dialect.name == "sqlite":
        return int(_START_ON_SQLITE.run(conn, row))
    result = conn.execute(_START_CONVERSATION, row)
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def add_to_conversation(
    conn: Connection,
    new: NewConversation,
    record: TurnRecord,
    *,
    once: dict[str, Any] | None = None,
) -> int | None:
    """A message said outside a turn (the team's answer, the bot's notice, a proactive
    message) in the end user's conversation: the open one at that place, or a new one when the
    end user started over; the conversation's id. `once`: a part that marks this message (the
    inbox item it answers); when the open conversation's recent messages of that role hold it
    already (kept by a run that stopped before it finished), it is not kept twice and None is
    returned."""
    found = conn.execute(
        select(_conv.c.id)
        .where(
            _conv.c.deployment_id == new.deployment_id,
            _conv.c.key == new.key,
            _conv.c.ended_at.is_(None),
        )
        .order_by(desc(_conv.c.id))
        .limit(1)
    ).scalar()
    if found is not None and once is not None and _kept(conn, found, record.role, once):
        return None
    conversation_id = found if found is not None else start_conversation(conn, new)
    add_messages(conn, conversation_id=conversation_id, bot_id=new.bot_id, records=[record])
    return int(conversation_id)


_KEPT_WINDOW = 50  # recent messages searched for a mark: a message kept twice would be recent


def _kept(conn: Connection, conversation_id: int, role: str, mark: dict[str, Any]) -> bool:
    query = (
        select(_msg.c.parts)
        .where(_msg.c.conversation_id == conversation_id, _msg.c.role == role)
        .order_by(desc(_msg.c.id))
        .limit(_KEPT_WINDOW)
    )
    return any(
        isinstance(part, dict) and all(part.get(k) == v for k, v in mark.items())
        for parts in conn.execute(query).scalars()
        for part in parts or []
    )


def end_conversation(conn: Connection, conversation_id: int) -> None:
    conn.execute(update(_conv).where(_conv.c.id == conversation_id).values(ended_at=utcnow()))


def add_messages(
    conn: Connection, *, conversation_id: int, bot_id: int, records: list[TurnRecord]
) -> list[int]:
    """Store `records` in order; their ids, in the same order."""
    now = utcnow()
    rows = [
        {
            "conversation_id": conversation_id,
            "bot_id": bot_id,
            "role": r.role,
            "text": r.text,
            "parts": r.parts,
            "version": r.version,
            "latency_ms": r.latency_ms,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": r.cost_usd,
            "error": r.error,
            "ab_test_id": r.ab_test_id,
            "variant": r.variant,
            "trace": r.trace,
            "created_at": now,
        }
        for r in records
    ]
    if conn.dialect.name == "sqlite":
        return [int(_ADD_MESSAGE_ON_SQLITE.run(conn, row)) for row in rows]
    return [int(row_id) for row_id in conn.execute(_ADD_MESSAGES, rows).scalars()]


API_CHANNEL = "api"  # the channel of the OpenAI-compatible API's conversations (no deployment)


def api_key(bot_id: int, env: str, tail: str) -> str:
    """The key of an OpenAI-compatible API conversation with `env` of the bot: `tail` is the
    person's (`user`) or the completion's id (a stateless call). It names the environment, as a
    deployment does for a channel's conversations (`api_in`)."""
    return f"{API_CHANNEL}:{bot_id}:{env}:{tail}"


def api_in(bot_id: int, env: str) -> ColumnElement[bool]:
    """API conversations (no deployment) with `env` of the bot."""
    return and_(_conv.c.channel == API_CHANNEL, _conv.c.key.startswith(api_key(bot_id, env, "")))


def answered_by(answer: Any, question: Any) -> ColumnElement[bool]:
    """Joins a turn's answer (`answer`, the message table or an alias of it) to the end user's
    message it answered (`question`, an alias): the message kept just before it, in the same
    write. A turn keeps both at once; a message said outside a turn (the team's, a schedule's, a
    trigger's) is kept alone and answers nothing."""
    earlier = _msg.alias("earlier")
    before = (
        select(func.max(earlier.c.id))
        .where(earlier.c.conversation_id == answer.c.conversation_id, earlier.c.id < answer.c.id)
        .correlate(answer)
        .scalar_subquery()
    )
    return and_(
        question.c.id == before,
        question.c.role == "user",
        question.c.created_at == answer.c.created_at,
    )


def _answers(bot_id: int, since: datetime) -> tuple[Any, Any]:
    """The tables and condition of a bot's answers since `since` (sandbox ones are no traffic)."""
    joined = _msg.join(_conv, _conv.c.id == _msg.c.conversation_id)
    answers = and_(
        _msg.c.bot_id == bot_id,
        _msg.c.created_at >= since,
        _conv.c.sandbox.is_(False),
        _msg.c.role == "assistant",
    )
    return joined, answers


_FAILED = and_(_msg.c.error.is_not(None), _msg.c.error.not_like("blocked:%"))


async def stats(conn: AsyncConnection, bot_id: int, since: datetime) -> StatsRow:
    """Counts over non-sandbox conversations of a bot since `since`."""
    joined, answers = _answers(bot_id, since)
    people = (
        await conn.execute(
            select(
                func.count(func.distinct(_msg.c.conversation_id)),
                func.count(func.distinct(_conv.c.user)),
            )
            .select_from(joined)
            .where(answers)
        )
    ).one()
    sliced = await conn.execute(
        select(
            _msg.c.version,
            _conv.c.channel,
            func.count(),
            func.count().filter(_FAILED),
            func.count().filter(_msg.c.error.like("blocked:%")),
            func.coalesce(func.sum(_msg.c.prompt_tokens), 0),
            func.coalesce(func.sum(_msg.c.completion_tokens), 0),
            func.coalesce(func.sum(_msg.c.cost_usd), 0.0),
            func.count().filter(and_(_msg.c.cost_usd.is_(None), _msg.c.error.is_(None))),
        )
        .select_from(joined)
        .where(answers)
        .group_by(_msg.c.version, _conv.c.channel)
    )
    usage = {
        (r[0], r[1]): Usage(r[2], r[3], r[4], int(r[5]), int(r[6]), float(r[7]), r[8])
        for r in sliced
    }
    latencies = (
        await conn.execute(
            select(_msg.c.latency_ms)
            .select_from(joined)
            .where(answers, _msg.c.latency_ms.is_not(None))
            .order_by(desc(_msg.c.id))
            .limit(10_000)
        )
    ).scalars()
    return StatsRow(
        conversations=people[0],
        users=people[1],
        latencies_ms=sorted(float(x) for x in latencies),
        usage=usage,
    )


Arm = tuple[int, str]  # a live A/B test's id and one of its variants ("A" or "B")


@dataclass(frozen=True, slots=True)
class BucketStats:
    """One period bucket (an hour or a day, "YYYY-MM-DD[ HH:00]" in UTC) of one version on one
    channel, in one A/B test's variant (None: outside a test)."""

    bucket: str
    version: int | None
    channel: str
    arm: Arm | None
    turns: int
    errors: int  # failed turns, as in `Usage`
    cost_usd: float | None  # None: none of them had a known price


@dataclass(frozen=True, slots=True)
class Series:
    """A bot's answers over time (`/stats`'s chart): per bucket, version, channel and A/B
    variant; conversations per bucket; every answer's latency per bucket, and again per bucket
    and variant for those of a test; and the 👎 of each variant's answers."""

    answers: list[BucketStats]
    conversations: dict[str, int]
    latencies_ms: dict[str, list[float]]
    arm_latencies_ms: dict[tuple[str, Arm], list[float]]
    rated_down: dict[Arm, int]


def _bucket(dialect: str, column: Any, *, hourly: bool) -> Any:
    """`column`'s hour or day as the same text on SQLite and PostgreSQL. SQLite keeps a time
    as ISO text in UTC ("2026-12-04 13:40:00.000000"): its day and hour are cut out of it, a
    quarter faster over a month of answers than `strftime`, which parses every one."""
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM-DD HH24:00" if hourly else "YYYY-MM-DD")
    day = func.substr(column, 1, 10)
    return day.concat(" ").concat(func.substr(column, 12, 2)).concat(":00") if hourly else day


async def series(conn: AsyncConnection, bot_id: int, since: datetime, *, hourly: bool) -> Series:
    """What `stats` counts, per hour or day since `since`, summed in the database."""
    joined, answers = _answers(bot_id, since)
    bucket = _bucket(conn.dialect.name, _msg.c.created_at, hourly=hourly).label("bucket")
    keys = (bucket, _msg.c.version, _conv.c.channel, _msg.c.ab_test_id, _msg.c.variant)
    grouped = await conn.execute(
        select(*keys, func.count(), func.count().filter(_FAILED), func.sum(_msg.c.cost_usd))
        .select_from(joined)
        .where(answers)
        .group_by(*keys)
        .order_by(*keys)
    )
    rows = [
        BucketStats(r[0], r[1], r[2], _arm(r[3], r[4]), r[5], r[6], _float(r[7])) for r in grouped
    ]
    conversations = await conn.execute(
        select(bucket, func.count(func.distinct(_msg.c.conversation_id)))
        .select_from(joined)
        .where(answers)
        .group_by(bucket)
    )
    latencies: dict[str, list[float]] = {}
    by_arm: dict[tuple[str, Arm], list[float]] = {}
    timed = await conn.execute(
        select(bucket, _msg.c.latency_ms, _msg.c.ab_test_id, _msg.c.variant)
        .select_from(joined)
        .where(answers, _msg.c.latency_ms.is_not(None))
    )
    for day, latency, test, variant in timed:
        latencies.setdefault(day, []).append(float(latency))
        arm = _arm(test, variant)
        if arm is not None:
            by_arm.setdefault((day, arm), []).append(float(latency))
    downs = await conn.execute(
        select(_msg.c.ab_test_id, _msg.c.variant, func.count())
        .select_from(joined.join(_fb, _fb.c.message_id == _msg.c.id))
        .where(answers, _msg.c.ab_test_id.is_not(None), _fb.c.rating < 0)
        .group_by(_msg.c.ab_test_id, _msg.c.variant)
    )
    rated_down = {arm: n for test, variant, n in downs if (arm := _arm(test, variant))}
    return Series(rows, {r[0]: r[1] for r in conversations}, latencies, by_arm, rated_down)


def _arm(test: int | None, variant: str | None) -> Arm | None:
    return None if test is None or variant is None else (test, variant)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: int
    channel: str
    user: str
    started_at: datetime
    messages: int


async def recent_conversations(
    conn: AsyncConnection, bot_id: int, *, limit: int = 50
) -> list[ConversationSummary]:
    count = (
        select(func.count())
        .where(_msg.c.conversation_id == _conv.c.id)
        .correlate(_conv)
        .scalar_subquery()
    )
    query = (
        select(_conv.c.id, _conv.c.channel, _conv.c.user, _conv.c.started_at, count)
        .where(_conv.c.bot_id == bot_id, _conv.c.sandbox.is_(False))
        .order_by(desc(_conv.c.id))
        .limit(limit)
    )
    return [ConversationSummary(*row) for row in (await conn.execute(query)).all()]


@dataclass(frozen=True, slots=True)
class ConversationHead:
    id: int
    channel: str
    user: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as kept, with its end users' ratings (answers only)."""

    id: int
    role: str
    text: str
    created_at: datetime
    version: int | None
    latency_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    error: str | None
    variant: str | None
    parts: list[dict[str, Any]] | None  # a tool call's record, a voice note's length
    ratings_up: int
    ratings_down: int

    @property
    def voice_s(self) -> float | None:
        """The length of the voice note an end user's message was heard from (None: typed)."""
        for part in self.parts or []:
            if isinstance(part, dict) and part.get("type") == "voice":
                seconds = part.get("duration_s")
                return float(seconds) if isinstance(seconds, int | float) else None
        return None


async def conversation_head(
    conn: AsyncConnection, bot_id: int, conversation_id: int
) -> ConversationHead | None:
    """A real (not `/try`) conversation of the bot; None: not one of its."""
    query = select(
        _conv.c.id, _conv.c.channel, _conv.c.user, _conv.c.started_at, _conv.c.ended_at
    ).where(_conv.c.id == conversation_id, _conv.c.bot_id == bot_id, _conv.c.sandbox.is_(False))
    row = (await conn.execute(query)).first()
    return None if row is None else ConversationHead(*row)


async def conversation_messages(
    conn: AsyncConnection, conversation_id: int, *, after: int, limit: int
) -> list[StoredMessage]:
    """The conversation's messages with ids above `after`, oldest first, at most `limit`."""
    ups = select(func.count()).where(_fb.c.message_id == _msg.c.id, _fb.c.rating > 0)
    downs = select(func.count()).where(_fb.c.message_id == _msg.c.id, _fb.c.rating < 0)
    query = (
        select(
            _msg.c.id,
            _msg.c.role,
            _msg.c.text,
            _msg.c.created_at,
            _msg.c.version,
            _msg.c.latency_ms,
            _msg.c.prompt_tokens,
            _msg.c.completion_tokens,
            _msg.c.cost_usd,
            _msg.c.error,
            _msg.c.variant,
            _msg.c.parts,
            ups.correlate(_msg).scalar_subquery(),
            downs.correlate(_msg).scalar_subquery(),
        )
        .where(_msg.c.conversation_id == conversation_id, _msg.c.id > after)
        .order_by(_msg.c.id)
        .limit(limit)
    )
    return [StoredMessage(*tuple(row)) for row in (await conn.execute(query)).all()]
