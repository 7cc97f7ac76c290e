"""End users' ratings (`runtime.ratings`) and what storage makes of them: a rating names an answer
the person could see, replaces their last one, and `/review`'s queries find rated-down and
flagged answers with their context. On SQLite, and PostgreSQL when marked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import Connection
from sqlmodel import col, select

from runtime.feedback import Rating
from storage import conversations as conv_store
from storage import feedback as feedback_store
from storage.database import Database
from storage.tables import Feedback, TurnScore, utcnow
from tests.runtime.rated import ANSWER, World, live_world


@pytest.fixture
async def world(any_db: Database) -> AsyncIterator[World]:
    world = await live_world(any_db)
    yield world
    await world.runtime.drain()


async def _ratings(db: Database) -> list[tuple[int, str, int, str]]:
    query = select(Feedback).order_by(col(Feedback.message_id), col(Feedback.user))
    async with db.read() as session:
        rows = (await session.exec(query)).all()
    return [(r.message_id, r.user, r.rating, r.channel) for r in rows]


async def _rate(
    world: World, answer: int, rating: Rating, *, chat: str = "c1", user: str = "u1"
) -> bool:
    return await world.runtime.ratings.by_answer(
        deployment_id=world.deployment_id,
        conversation=chat,
        message_id=answer,
        user=user,
        channel="test",
        rating=rating,
    )


async def test_a_later_rating_replaces_the_last_and_none_takes_it_back(world: World) -> None:
    answer = await world.answered("How long do refunds take?")
    assert await _rate(world, answer, 1)
    assert await _ratings(world.db) == [(answer, "u1", 1, "test")]
    assert await _rate(world, answer, -1)  # up, then down: down
    assert await _rate(world, answer, -1)  # a replay changes nothing
    assert await _ratings(world.db) == [(answer, "u1", -1, "test")]
    assert await _rate(world, answer, 1, user="u2")  # someone else's is their own
    assert await _rate(world, answer, 0)
    assert await _ratings(world.db) == [(answer, "u2", 1, "test")]
    assert await _rate(world, answer, 0)  # taking back what is not there is harmless
    assert await _ratings(world.db) == [(answer, "u2", 1, "test")]


async def test_only_an_answer_of_that_conversation_on_that_deployment_is_rated(
    world: World,
) -> None:
    mine = await world.answered("hello", chat="c1")
    theirs = await world.answered("hello", chat="c2")
    other = await live_world(world.db, name="other-bot")
    elsewhere = (await other.ask("hello", chat="c1")).message_id
    assert elsewhere is not None
    assert not await _rate(world, theirs, -1, chat="c1")  # another conversation's answer
    assert not await _rate(world, mine - 1, -1, chat="c1")  # the user's own message
    assert not await _rate(world, elsewhere, -1, chat="c1")  # same key, another deployment
    assert not await _rate(world, 10**9, -1, chat="c1")  # no such message
    assert await _ratings(world.db) == []
    assert await _rate(world, mine, -1, chat="c1")


async def test_a_reaction_rates_the_sent_answer_its_platform_reference_names(world: World) -> None:
    await world.feed("How long do refunds take?", key="u-1")
    [sent] = world.channel.sent
    assert sent.feedback_id is not None
    ratings = world.runtime.ratings
    assert await ratings.by_ref(
        deployment_id=world.deployment_id, ref="room:1", user="u9", channel="test", rating=-1
    )
    assert await _ratings(world.db) == [(sent.feedback_id, "u9", -1, "test")]
    other = await live_world(world.db, name="other-bot")
    for deployment, ref in ((world.deployment_id, "room:2"), (other.deployment_id, "room:1")):
        assert not await ratings.by_ref(
            deployment_id=deployment, ref=ref, user="u9", channel="test", rating=1
        )
    assert await _ratings(world.db) == [(sent.feedback_id, "u9", -1, "test")]


async def test_the_transcript_carries_ids_and_one_persons_ratings(world: World) -> None:
    first = await world.answered("one")
    second = await world.answered("two")
    await _rate(world, first, -1)
    await _rate(world, second, 1, user="u2")  # someone else's rating is not shown to u1
    async with world.db.read_conn() as conn:
        rows = await feedback_store.rated_transcript(conn, await _conversation(world), user="u1")
    assert [(r.id, r.role, r.text, r.rating) for r in rows] == [
        (first - 1, "user", "one", None),
        (first, "assistant", ANSWER, -1),
        (second - 1, "user", "two", None),
        (second, "assistant", ANSWER, None),
    ]


async def _conversation(world: World, chat: str = "c1") -> int:
    async with world.db.read_conn() as conn:
        found = await conv_store.active_conversation(conn, world.deployment_id, chat)
    assert found is not None
    return found


def _score(
    message_id: int, score: float | None, *, flagged: bool, reason: str = ""
) -> Callable[[Connection], None]:
    """Online evaluation's verdict on an answer, as a write."""
    return partial(
        feedback_store.keep_score,
        message_id=message_id,
        score=score,
        flagged=flagged,
        reason=reason,
        cost_usd=0.001,
    )


async def test_review_finds_rated_down_and_flagged_answers_newest_first(world: World) -> None:
    answers = [await world.answered(f"question {n}") for n in range(5)]
    liked, down, flagged, failed, both = answers
    await _rate(world, liked, 1)
    await _rate(world, down, -1)
    await _rate(world, down, -1, user="u2")
    await _rate(world, down, 1, user="u3")
    await _rate(world, both, -1)
    for message_id, score, is_flagged, reason in (
        (flagged, 0.0, True, "it ignores the question"),
        (failed, None, False, "the judge gave no grade: hmm"),
        (both, 0.25, True, "rude"),
        (liked, 1.0, False, "fine"),
    ):
        await world.db.run_write(_score(message_id, score, flagged=is_flagged, reason=reason))
    async with world.db.read_conn() as conn:
        ids = await feedback_store.review_ids(conn, world.bot_id)
        assert ids == [both, flagged, down]
        assert await feedback_store.review_ids(conn, world.bot_id, below=both, limit=1) == [flagged]
        items = await feedback_store.review_items(conn, ids)
    assert [(i.message_id, i.downs, i.ups, i.score, i.flagged) for i in items] == [
        (both, 1, 0, 0.25, True),
        (flagged, 0, 0, 0.0, True),
        (down, 2, 1, None, False),
    ]
    latest = items[0]
    assert latest.question == "question 4" and latest.answer == ANSWER
    assert latest.before == (("user", "question 3"), ("assistant", ANSWER))
    assert latest.reason == "rude" and latest.channel == "test" and latest.version == 1
    async with world.db.read_conn() as conn:
        [first] = await feedback_store.review_items(conn, [liked])
    assert first.question == "question 0" and first.before == ()


async def test_a_verdict_is_kept_once_and_not_for_a_gone_answer(world: World) -> None:
    answer = await world.answered("hello")
    await world.db.run_write(_score(answer, 0.5, flagged=False, reason="ok"))
    await world.db.run_write(_score(answer, 0.0, flagged=True, reason="late"))
    await world.db.run_write(_score(10**9, 0.0, flagged=True))
    async with world.db.read() as session:
        rows = (await session.exec(select(TurnScore))).all()
    assert [(r.message_id, r.bot_id, r.score, r.flagged, r.reason) for r in rows] == [
        (answer, world.bot_id, 0.5, False, "ok")
    ]
    async with world.db.read_conn() as conn:
        summary = await feedback_store.score_summary(
            conn, world.bot_id, since=utcnow() - timedelta(days=7)
        )
        later = await feedback_store.score_summary(
            conn, world.bot_id, since=utcnow() + timedelta(minutes=1)
        )
    assert (summary.judged, summary.mean, summary.flagged, summary.failed) == (1, 0.5, 0, 0)
    assert summary.cost_usd == pytest.approx(0.001)
    assert later.judged == 0 and later.mean is None


async def test_with_the_pii_guard_on_review_shows_the_masked_message(any_db: Database) -> None:
    world = await live_world(any_db, pii=True)
    answer = await world.answered("Mail me at ann@example.com or call +44 20 7946 0958")
    await _rate(world, answer, -1)
    async with any_db.read_conn() as conn:
        [item] = await feedback_store.review_items(conn, [answer])
    assert item.question == "Mail me at [email] or call [phone]"
    await world.runtime.drain()
