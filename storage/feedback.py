"""End users' ratings of answers, where platforms find sent answers again, online evaluation's
settings and scores, and what `/review` lists.

`remember_sent` keeps, for the answers just sent, the reference each platform gave (written
together, soon after the sends: `runtime.feedback.Ratings.sent`); ratings arrive later, by that
reference (a Telegram reaction, a Slack button) or by the answer's id (the web page). Online
evaluation keeps a `turn_score` per judged answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, desc, func, literal, select, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import (
    Conversation,
    Feedback,
    Message,
    OnlineEval,
    SentRef,
    TurnScore,
    utcnow,
)

_sent = SentRef.__table__  # type: ignore[attr-defined]
_feedback = Feedback.__table__  # type: ignore[attr-defined]
_msg = Message.__table__  # type: ignore[attr-defined]
_conv = Conversation.__table__  # type: ignore[attr-defined]
_online = OnlineEval.__table__  # type: ignore[attr-defined]
_score = TurnScore.__table__  # type: ignore[attr-defined]
_REASON_CHARS = 500  # turn_score.reason

_REMEMBER_SENT = {
    dialect.dialect.name: dialect.insert(_sent)
    .values(
        deployment_id=bindparam("b_deployment"),
        ref=bindparam("b_ref"),
        message_id=bindparam("b_message"),
        created_at=bindparam("b_at"),
    )
    .on_conflict_do_nothing(index_elements=["deployment_id", "ref"])
    for dialect in (sqlite, postgresql)
}


@dataclass(frozen=True, slots=True)
class SentRow:
    """`ref` (a channel's `SendReceipt.ref`) names the stored answer `message_id`."""

    deployment_id: str
    ref: str
    message_id: int


def remember_sent(conn: Connection, rows: Sequence[SentRow]) -> None:
    """Keep what each platform reference names, in one statement (a repeat changes nothing)."""
    at = utcnow()
    conn.execute(
        _REMEMBER_SENT[conn.dialect.name],
        [
            {"b_deployment": r.deployment_id, "b_ref": r.ref, "b_message": r.message_id, "b_at": at}
            for r in rows
        ],
    )


async def answer_by_ref(
    conn: AsyncConnection, *, deployment_id: str, ref: str
) -> tuple[int, int] | None:
    """The answer (message id, bot id) a platform's reference names on a deployment."""
    query = (
        select(_msg.c.id, _msg.c.bot_id)
        .select_from(_sent.join(_msg, _msg.c.id == _sent.c.message_id))
        .where(_sent.c.deployment_id == deployment_id, _sent.c.ref == ref)
    )
    row = (await conn.execute(query)).first()
    return (int(row[0]), int(row[1])) if row is not None else None


async def answer_in_conversation(
    conn: AsyncConnection, *, deployment_id: str, conversation_key: str, message_id: int
) -> int | None:
    """The bot id of answer `message_id` when it was said in a conversation at
    (`deployment_id`, `conversation_key`); None otherwise (someone else's, or not an answer)."""
    query = (
        select(_msg.c.bot_id)
        .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
        .where(
            and_(
                _msg.c.id == message_id,
                _msg.c.role == "assistant",
                _msg.c.error.is_(None),
                _conv.c.deployment_id == deployment_id,
                _conv.c.key == conversation_key,
            )
        )
    )
    found = (await conn.execute(query)).scalar()
    return int(found) if found is not None else None


def rate(
    conn: Connection, *, message_id: int, bot_id: int, user: str, channel: str, rating: int
) -> None:
    """`user`'s rating of the answer: +1 or -1 replaces theirs, 0 removes it."""
    if rating == 0:
        conn.execute(
            delete(_feedback).where(_feedback.c.message_id == message_id, _feedback.c.user == user)
        )
        return
    values = {
        "message_id": message_id,
        "user": user,
        "bot_id": bot_id,
        "rating": rating,
        "channel": channel,
        "created_at": utcnow(),
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_feedback).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["message_id", "user"],
            set_={"rating": rating, "channel": channel, "created_at": values["created_at"]},
        )
    )


# -- the web page's view of a conversation ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RatedMessage:
    """A message of a conversation, with the rating one person gave it (+1, -1 or None)."""

    id: int
    role: str
    text: str
    rating: int | None


async def rated_transcript(
    conn: AsyncConnection, conversation_id: int, *, user: str
) -> list[RatedMessage]:
    """The conversation's messages in order, each with `user`'s rating of it (a reloaded page
    shows its thumbs as they were)."""
    query = (
        select(_msg.c.id, _msg.c.role, _msg.c.text, _feedback.c.rating)
        .select_from(
            _msg.outerjoin(
                _feedback, and_(_feedback.c.message_id == _msg.c.id, _feedback.c.user == user)
            )
        )
        .where(_msg.c.conversation_id == conversation_id)
        .order_by(_msg.c.id)
    )
    rows = (await conn.execute(query)).all()
    return [RatedMessage(int(row[0]), row[1], row[2], row[3]) for row in rows]


# -- online evaluation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnlineSetting:
    """`percent` of a bot's live answers are judged by `rubric`."""

    percent: float
    rubric: str
    updated_by: str
    updated_at: datetime


def _setting(row: OnlineEval) -> OnlineSetting:
    return OnlineSetting(row.percent, row.rubric, row.updated_by, row.updated_at)


async def online_settings(conn: AsyncConnection) -> dict[int, OnlineSetting]:
    """Every bot's online evaluation setting, by bot id (one row per bot that has one)."""
    query = select(
        _online.c.bot_id,
        _online.c.percent,
        _online.c.rubric,
        _online.c.updated_by,
        _online.c.updated_at,
    )
    rows = (await conn.execute(query)).all()
    return {int(row[0]): OnlineSetting(row[1], row[2], row[3], row[4]) for row in rows}


async def online_setting(session: AsyncSession, bot_id: int) -> OnlineSetting | None:
    row = await session.get(OnlineEval, bot_id)
    return _setting(row) if row is not None else None


async def set_online(
    session: AsyncSession, *, bot_id: int, percent: float, rubric: str, actor: str
) -> OnlineSetting:
    """Create or replace the bot's setting (in the caller's transaction, with its audit)."""
    row = await session.get(OnlineEval, bot_id)
    if row is None:
        row = OnlineEval(bot_id=bot_id, percent=percent, rubric=rubric, updated_by=actor)
    else:
        row.percent, row.rubric, row.updated_by, row.updated_at = percent, rubric, actor, utcnow()
    session.add(row)
    await session.flush()
    return _setting(row)


async def remove_online(session: AsyncSession, bot_id: int) -> bool:
    """Turn the bot's online evaluation off; False: it had none."""
    row = await session.get(OnlineEval, bot_id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


def keep_score(
    conn: Connection,
    *,
    message_id: int,
    score: float | None,
    flagged: bool,
    reason: str,
    cost_usd: float | None,
) -> None:
    """Online evaluation's verdict on answer `message_id` (the first one stays). Nothing is
    kept when the answer is gone meanwhile (its bot deleted): the row is copied from it."""
    source = select(
        _msg.c.id,
        _msg.c.bot_id,
        literal(score, _score.c.score.type),
        literal(flagged),
        literal(reason[:_REASON_CHARS]),
        literal(cost_usd, _score.c.cost_usd.type),
        literal(utcnow(), _score.c.created_at.type),
    ).where(_msg.c.id == message_id)
    columns = ["message_id", "bot_id", "score", "flagged", "reason", "cost_usd", "created_at"]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_score).from_select(columns, source)
    conn.execute(statement.on_conflict_do_nothing(index_elements=["message_id"]))


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """Online evaluation's verdicts on a bot's answers since some time."""

    judged: int  # verdicts, including the judge's failures
    mean: float | None  # of the scores (failures excluded)
    flagged: int
    failed: int  # the judge gave no grade
    cost_usd: float  # of the verdicts whose cost is known


async def score_summary(conn: AsyncConnection, bot_id: int, *, since: datetime) -> ScoreSummary:
    query = select(
        func.count(),
        func.avg(_score.c.score),
        func.count().filter(_score.c.flagged.is_(True)),
        func.count().filter(_score.c.score.is_(None)),
        func.coalesce(func.sum(_score.c.cost_usd), 0.0),
    ).where(_score.c.bot_id == bot_id, _score.c.created_at >= since)
    row = (await conn.execute(query)).one()
    mean = float(row[1]) if row[1] is not None else None
    return ScoreSummary(int(row[0]), mean, int(row[2]), int(row[3]), float(row[4]))


# -- /review ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """An answer to review (rated down, flagged, or both), with what came before it."""

    message_id: int
    at: datetime
    channel: str
    version: int | None
    variant: str | None
    downs: int
    ups: int
    score: float | None  # online evaluation's, when it judged the answer
    flagged: bool
    reason: str  # the judge's
    question: str | None  # the user's message it answered
    answer: str
    before: tuple[tuple[str, str], ...]  # the exchange before the question: (role, text)


async def review_ids(
    conn: AsyncConnection, bot_id: int, *, below: int | None = None, limit: int = 50
) -> list[int]:
    """The bot's answers rated down by someone or flagged by online evaluation, newest first
    (ids below `below`: the next page)."""
    downs = select(_feedback.c.message_id.label("id")).where(
        _feedback.c.bot_id == bot_id, _feedback.c.rating < 0
    )
    flags = select(_score.c.message_id.label("id")).where(
        _score.c.bot_id == bot_id, _score.c.flagged.is_(True)
    )
    found = union(downs, flags).subquery()
    query = select(found.c.id).order_by(desc(found.c.id)).limit(limit)
    if below is not None:
        query = query.where(found.c.id < below)
    return [int(row[0]) for row in (await conn.execute(query)).all()]


_CONTEXT_MESSAGES = 6  # read before an answer: its question and the exchange before


async def review_items(conn: AsyncConnection, message_ids: Sequence[int]) -> list[ReviewItem]:
    """The answers `message_ids` with their ratings, verdicts and context, in the given order."""
    if not message_ids:
        return []
    ids = list(message_ids)
    answers = (
        await conn.execute(
            select(
                _msg.c.id,
                _msg.c.conversation_id,
                _msg.c.created_at,
                _conv.c.channel,
                _msg.c.version,
                _msg.c.variant,
                _msg.c.text,
            )
            .select_from(_msg.join(_conv, _conv.c.id == _msg.c.conversation_id))
            .where(_msg.c.id.in_(ids))
        )
    ).all()
    counts: dict[tuple[int, int], int] = {}
    rated = select(_feedback.c.message_id, _feedback.c.rating, func.count()).where(
        _feedback.c.message_id.in_(ids)
    )
    for message_id, rating, count in await conn.execute(
        rated.group_by(_feedback.c.message_id, _feedback.c.rating)
    ):
        counts[(int(message_id), int(rating))] = int(count)
    verdicts = {
        int(row[0]): (row[1], bool(row[2]), row[3])
        for row in await conn.execute(
            select(_score.c.message_id, _score.c.score, _score.c.flagged, _score.c.reason).where(
                _score.c.message_id.in_(ids)
            )
        )
    }
    items: dict[int, ReviewItem] = {}
    for message_id, conversation_id, at, channel, version, variant, text in answers:
        question, before = await _context(conn, int(conversation_id), int(message_id))
        score, flagged, reason = verdicts.get(int(message_id), (None, False, ""))
        items[int(message_id)] = ReviewItem(
            message_id=int(message_id),
            at=at,
            channel=channel,
            version=version,
            variant=variant,
            downs=counts.get((int(message_id), -1), 0),
            ups=counts.get((int(message_id), 1), 0),
            score=score,
            flagged=flagged,
            reason=reason,
            question=question,
            answer=text,
            before=before,
        )
    return [items[i] for i in ids if i in items]


async def _context(
    conn: AsyncConnection, conversation_id: int, answer_id: int
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The user's message an answer replied to, and the exchange before it (oldest first)."""
    query = (
        select(_msg.c.role, _msg.c.text)
        .where(_msg.c.conversation_id == conversation_id, _msg.c.id < answer_id)
        .order_by(desc(_msg.c.id))
        .limit(_CONTEXT_MESSAGES)
    )
    earlier = [(role, text) for role, text in (await conn.execute(query)).all()]
    asked = next((i for i, (role, _) in enumerate(earlier) if role == "user"), None)
    if asked is None:
        return None, ()
    before: list[tuple[str, str]] = []
    for role, text in earlier[asked + 1 :]:
        before.append((role, text))
        if role == "user":
            break
    return earlier[asked][1], tuple(reversed(before))
