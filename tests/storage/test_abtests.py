"""A/B tests in storage, on SQLite and (when available) PostgreSQL: one running test per
environment (the index decides), how tests end, and each variant's figures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from builders.spec import BotSpec
from storage import abtests as ab_store
from storage import conversations as conv_store
from storage import feedback as feedback_store
from storage.abtests import AbTestRow
from storage.bots import BotRepository
from storage.database import Database
from storage.tables import Bot, TurnScore
from storage.teams import TeamRepository


async def _bot(db: Database, name: str = "faq-bot") -> int:
    async with db.write() as session:
        team = await TeamRepository(session).create(f"team-{name}")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name=name))
    assert bot.id is not None
    return bot.id


async def _start(db: Database, bot_id: int, env: str = "production", b: int = 2) -> AbTestRow:
    async with db.write_conn() as conn:
        return await ab_store.start(
            conn, bot_id=bot_id, env=env, version_a=1, version_b=b, percent=20, by="web:ann"
        )


async def test_one_test_runs_per_environment(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    first = await _start(any_db, bot_id)
    assert (first.status, first.env, first.version_a, first.version_b, first.percent) == (
        "running",
        "production",
        1,
        2,
        20,
    )
    assert first.started_by == "web:ann" and first.ended_at is None and first.running
    with pytest.raises(IntegrityError):
        await _start(any_db, bot_id, b=3)
    staging = await _start(any_db, bot_id, env="staging")
    other_bot = await _start(any_db, await _bot(any_db, "other-bot"))
    async with any_db.read_conn() as conn:
        running = await ab_store.running(conn, bot_id, "production")
        current = await ab_store.current(conn, bot_id)
    assert running is not None and running.id == first.id and running.percent == 20
    assert [t.id for t in current] == [first.id, staging.id]  # production first
    assert other_bot.id not in {t.id for t in current}

    async with any_db.write_conn() as conn:
        ended = await ab_store.end(conn, first.id, status="stopped", by="web:bo", reason="enough")
    assert ended is not None and not ended.running
    assert (ended.status, ended.ended_by, ended.end_reason) == ("stopped", "web:bo", "enough")
    assert ended.ended_at is not None
    again = await _start(any_db, bot_id, b=3)  # the environment is free again
    async with any_db.read_conn() as conn:
        last = await ab_store.last(conn, bot_id, "production")
        assert await ab_store.last(conn, await _bot(any_db, "new-bot")) is None
    assert last is not None and last.id == again.id


async def test_a_test_ends_once(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    test = await _start(any_db, bot_id)
    async with any_db.write_conn() as conn:
        assert await ab_store.end(conn, test.id, status="ended", by="a", reason="moved")
        assert await ab_store.end(conn, test.id, status="stopped", by="b", reason="late") is None
        with pytest.raises(ValueError, match="a test ends as one of"):
            await ab_store.end(conn, test.id, status="running", by="c", reason="no")
    async with any_db.read_conn() as conn:
        found = await ab_store.get(conn, test.id)
        assert await ab_store.running(conn, bot_id, "production") is None
    assert found is not None and (found.status, found.ended_by) == ("ended", "a")


def _turn(
    variant: str | None,
    test_id: int | None,
    *,
    latency: float = 100.0,
    cost: float | None = 0.002,
    error: str | None = None,
) -> list[conv_store.TurnRecord]:
    return [
        conv_store.TurnRecord("user", "hi", error=error),
        conv_store.TurnRecord(
            "assistant",
            "hello",
            latency_ms=latency,
            cost_usd=cost,
            error=error,
            ab_test_id=test_id,
            variant=variant,
        ),
    ]


async def _talk(
    db: Database, bot_id: int, channel: str, user: str, turns: list[list[conv_store.TurnRecord]]
) -> list[int]:
    """A conversation of `user` with `turns`; the ids of its answers."""

    def store(conn: Connection) -> list[int]:
        conversation = conv_store.start_conversation(
            conn,
            conv_store.NewConversation(
                bot_id=bot_id, deployment_id=None, channel=channel, key=user, user=user
            ),
        )
        answers = []
        for records in turns:
            ids = conv_store.add_messages(
                conn, conversation_id=conversation, bot_id=bot_id, records=records
            )
            answers.append(ids[-1])
        return answers

    return await db.run_write(store)


async def _rate(db: Database, bot_id: int, message_id: int, user: str, rating: int) -> None:
    await db.run_write(
        lambda conn: feedback_store.rate(
            conn, message_id=message_id, bot_id=bot_id, user=user, channel="web", rating=rating
        )
    )


async def _score(db: Database, bot_id: int, message_id: int, score: float | None) -> None:
    values: dict[str, Any] = {"message_id": message_id, "bot_id": bot_id, "score": score}
    await db.run_write(lambda conn: conn.execute(insert(TurnScore.__table__), values))  # type: ignore[attr-defined]


async def test_each_variant_counts_only_its_own_answers(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    test = await _start(any_db, bot_id)
    # A: ann (web) twice, one failed turn and one a guard refused; bob on Telegram with an
    # unpriced answer. B: cy, three answers.
    ann = await _talk(
        any_db,
        bot_id,
        "web",
        "ann",
        [
            _turn("A", test.id, latency=100),
            _turn("A", test.id, latency=300, cost=0.004),
            _turn("A", test.id, latency=5000, cost=None, error="model timed out"),
            _turn("A", test.id, latency=1, cost=None, error="blocked: terms"),
        ],
    )
    await _talk(any_db, bot_id, "telegram", "ann", [_turn("A", test.id, latency=200, cost=None)])
    cy = await _talk(
        any_db,
        bot_id,
        "web",
        "cy",
        [_turn("B", test.id, latency=50 * n, cost=0.001) for n in (1, 2, 3)],
    )
    # Not this test: before it, another bot's, a later test's.
    await _talk(any_db, bot_id, "web", "dee", [_turn(None, None)])
    other_bot = await _bot(any_db, "other-bot")
    other = await _start(any_db, other_bot)
    await _talk(any_db, other_bot, "web", "ed", [_turn("B", other.id)])
    for user, rating in (("ann", 1), ("x", 1), ("y", -1)):
        await _rate(any_db, bot_id, ann[0], user, rating)
    await _rate(any_db, bot_id, ann[1], "ann", -1)
    await _rate(any_db, bot_id, cy[0], "cy", 1)
    await _rate(any_db, bot_id, cy[1], "cy", 1)
    await _rate(any_db, bot_id, cy[1], "cy", 0)  # taken back
    await _score(any_db, bot_id, ann[0], 0.75)
    await _score(any_db, bot_id, ann[1], None)  # the judge gave no verdict
    await _score(any_db, bot_id, cy[0], 1.0)
    await _score(any_db, bot_id, cy[2], 0.5)

    async with any_db.read_conn() as conn:
        stats = await ab_store.variant_stats(conn, test)
    a, b = stats["A"], stats["B"]
    assert (a.turns, a.users, a.errors, a.blocked) == (5, 2, 1, 1)  # web:ann and telegram:ann
    assert (a.ups, a.downs, a.rated) == (2, 2, 4)
    assert a.scores == (0.75,)
    assert a.latencies_ms == (100.0, 200.0, 300.0)  # answered turns only
    assert (a.priced_turns, a.unknown_cost_turns) == (2, 1)
    assert a.cost_per_turn_usd == pytest.approx(0.003)
    assert (b.turns, b.users, b.errors, b.ups, b.downs) == (3, 1, 0, 1, 0)
    assert sorted(b.scores) == [0.5, 1.0] and b.latencies_ms == (50.0, 100.0, 150.0)
    assert b.cost_per_turn_usd == pytest.approx(0.001) and b.unknown_cost_turns == 0

    fresh = await _start(any_db, bot_id, env="staging")
    async with any_db.read_conn() as conn:
        empty = await ab_store.variant_stats(conn, fresh)
    assert empty["A"].turns == empty["B"].turns == 0
    assert empty["A"].cost_per_turn_usd is None and empty["B"].latencies_ms == ()


async def test_scores_and_latencies_are_capped_to_the_most_recent(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ab_store, "MAX_SCORES", 2)
    monkeypatch.setattr(ab_store, "MAX_LATENCIES", 2)
    bot_id = await _bot(any_db)
    test = await _start(any_db, bot_id)
    answers = await _talk(
        any_db, bot_id, "web", "ann", [_turn("B", test.id, latency=10.0 * n) for n in (1, 2, 3, 4)]
    )
    for answer, score in zip(answers, (0.1, 0.2, 0.3, 0.4), strict=True):
        await _score(any_db, bot_id, answer, score)
    async with any_db.read_conn() as conn:
        b = (await ab_store.variant_stats(conn, test))["B"]
    assert b.turns == 4
    assert sorted(b.scores) == [0.3, 0.4] and b.latencies_ms == (30.0, 40.0)


async def test_the_version_a_test_starts_on_is_read_locked(any_db: Database) -> None:
    """Read in the transaction that starts a test: a move of the pointer under way is waited
    for, and the version it moved to is read."""
    bot_id = await _bot(any_db)
    async with any_db.write() as session:
        repo = BotRepository(session)
        bot = await session.get(Bot, bot_id)
        assert bot is not None
        spec = BotSpec(name="faq-bot")
        v1, v2 = [await repo.add_version(bot, spec, created_by="t") for _ in range(2)]
        assert v1.id is not None and v2.id is not None
        await repo.set_pointer(bot_id, "production", v1.id)

    async def locked() -> int | None:
        async with any_db.write_conn() as conn:
            return await ab_store.locked_version(conn, bot_id, "production")

    assert await locked() == v1.number
    async with any_db.write_conn() as conn:
        assert await ab_store.locked_version(conn, bot_id, "staging") is None
    async with any_db.write() as session:  # a promotion to v2, not committed yet
        await BotRepository(session).set_pointer(bot_id, "production", v2.id)
        reading = asyncio.create_task(locked())
        await asyncio.sleep(0.3)
        assert not reading.done()
    assert await reading == v2.number
