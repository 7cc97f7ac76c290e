"""Test runs in storage, on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

from builders.spec import BotSpec
from storage.bots import BotRepository
from storage.database import Database
from storage.teams import TeamRepository
from storage.test_runs import TestRunRepository, failure_reason

HASH_A = "sha256:" + "a" * 64
HASH_B = "sha256:" + "b" * 64
WORKER = "studio:host:1:abc"
RESULT = {
    "number": 1,
    "input": "hi",
    "expect": "contains 'hello'",
    "outcome": "fail",
    "answer": "hey",
    "reason": "expected it to contain 'hello'",
}


async def _bot(db: Database, name: str = "faq-bot") -> int:
    async with db.write() as session:
        team = await TeamRepository(session).create(f"team-{name}")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name=name))
    assert bot.id is not None
    return bot.id


async def _start(db: Database, bot_id: int, spec_hash: str = HASH_A, total: int = 1) -> int:
    async with db.write() as session:
        run = await TestRunRepository(session).start(
            bot_id, spec_hash, total, "web:alice", worker=WORKER
        )
    assert run.id is not None
    return run.id


async def test_a_run_starts_running_and_finishes_with_its_results(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    run_id = await _start(any_db, bot_id, total=1)
    async with any_db.read() as session:
        run = await TestRunRepository(session).latest(bot_id, HASH_A)
    assert run is not None and run.id == run_id
    assert (run.status, run.total, run.passed, run.failed) == ("running", 1, 0, 0)
    assert run.results is None and run.finished_at is None and run.started_by == "web:alice"

    async with any_db.write() as session:
        await TestRunRepository(session).finish(run_id, [RESULT], passed=0, failed=1)
    async with any_db.read() as session:
        run = await TestRunRepository(session).latest(bot_id, HASH_A)
    assert run is not None
    assert (run.status, run.passed, run.failed, run.results) == ("done", 0, 1, [RESULT])
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert failure_reason(run) is None


async def test_latest_is_the_newest_run_of_that_exact_draft(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    other_bot = await _bot(any_db, "other-bot")
    first_a = await _start(any_db, bot_id, HASH_A)
    second_a = await _start(any_db, bot_id, HASH_A)
    only_b = await _start(any_db, bot_id, HASH_B)
    await _start(any_db, other_bot, HASH_A)
    async with any_db.read() as session:
        repo = TestRunRepository(session)
        newest_a = await repo.latest(bot_id, HASH_A)
        newest_b = await repo.latest(bot_id, HASH_B)
        newest = await repo.latest_for_bot(bot_id)
        assert await repo.latest(bot_id, "sha256:" + "c" * 64) is None
        assert await repo.latest_for_bot(other_bot + 1000) is None
    assert newest_a is not None and newest_a.id == second_a != first_a
    assert newest_b is not None and newest_b.id == only_b
    assert newest is not None and newest.id == only_b


async def test_a_crashed_run_is_failed_with_its_reason(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    run_id = await _start(any_db, bot_id)
    async with any_db.write() as session:
        await TestRunRepository(session).fail(run_id, "pipeline node 'x': not available")
    async with any_db.read() as session:
        run = await TestRunRepository(session).latest_for_bot(bot_id)
    assert run is not None and run.status == "failed" and run.finished_at is not None
    assert failure_reason(run) == "pipeline node 'x': not available"


async def test_a_late_failure_does_not_overwrite_a_finished_run(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    run_id = await _start(any_db, bot_id)
    async with any_db.write() as session:
        repo = TestRunRepository(session)
        await repo.finish(run_id, [RESULT], passed=0, failed=1)
        await repo.fail(run_id, "too late")
    async with any_db.read() as session:
        run = await TestRunRepository(session).latest_for_bot(bot_id)
    assert run is not None and run.status == "done" and run.results == [RESULT]


async def test_finishing_a_run_of_a_deleted_bot_does_nothing(any_db: Database) -> None:
    bot_id = await _bot(any_db)
    run_id = await _start(any_db, bot_id)
    async with any_db.write() as session:
        bots = BotRepository(session)
        bot = await bots.by_id(bot_id)
        assert bot is not None
        await bots.delete(bot)
    async with any_db.write() as session:
        repo = TestRunRepository(session)
        await repo.finish(run_id, [RESULT], passed=0, failed=1)
        await repo.fail(run_id, "gone")
        assert await repo.latest_for_bot(bot_id) is None
