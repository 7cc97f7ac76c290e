"""Evaluation runs, results and gates in storage, on SQLite and (when available) PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from builders.dataset import DatasetContent, DatasetRow, Evaluator
from builders.spec import BotSpec
from storage.bots import BotRepository
from storage.database import Database
from storage.datasets import DatasetRepository
from storage.errors import DuplicateError
from storage.evals import EvalRepository
from storage.tables import EvalRun
from storage.teams import TeamRepository

SPEC_A = "sha256:" + "a" * 64
CONTENT = DatasetContent(
    rows=[DatasetRow(id=1, turns=["hi"], expected="hello")],
    evaluators=[Evaluator(kind="contains")],
)
VERSIONS = [
    {"label": "v1", "number": 1, "spec_hash": SPEC_A, "ref": "staging"},
    {"label": "draft", "number": None, "spec_hash": "sha256:" + "d" * 64, "ref": "draft"},
]


def result(version: str, outcome: str = "pass", **fields: Any) -> dict[str, Any]:
    return {
        "row_id": "1",
        "version": version,
        "outcome": outcome,
        "score": 1.0 if outcome == "pass" else 0.0,
        "answer": "hello there",
        "latency_ms": 12.5,
        "cost_usd": 0.0,
        "checks": [{"kind": "contains", "outcome": outcome, "reason": ""}],
        "transcript": None,
        **fields,
    }


async def _bot(db: Database, name: str = "faq-bot") -> tuple[int, int, int]:
    """(team id, bot id, dataset id) of a bot with a dataset "golden"."""
    async with db.write() as session:
        team = await TeamRepository(session).create(f"team-{name}")
        assert team.id is not None
        bot = await BotRepository(session).create(team.id, BotSpec(name=name))
        assert bot.id is not None
        dataset = await DatasetRepository(session).save(
            team_id=team.id, bot_id=bot.id, name="golden", content=CONTENT, actor="web:alice"
        )
    assert dataset.id is not None
    return team.id, bot.id, dataset.id


async def _start(
    db: Database, ids: tuple[int, int, int], content_hash: str = "h1", *, worker: str = "w1"
) -> int:
    team_id, bot_id, dataset_id = ids
    async with db.write() as session:
        run = await EvalRepository(session).start(
            team_id=team_id,
            bot_id=bot_id,
            dataset_id=dataset_id,
            dataset_name="golden",
            dataset_hash=content_hash,
            versions=VERSIONS,
            total=2,
            started_by="web:alice",
            worker=worker,
        )
    assert run.id is not None
    return run.id


async def _finished(db: Database, ids: tuple[int, int, int], content_hash: str) -> int:
    run_id = await _start(db, ids, content_hash)
    async with db.write() as session:
        await EvalRepository(session).finish(run_id, results=[], summary=[], cost_usd=0.0)
    return run_id


async def test_a_run_records_progress_then_its_results_and_summary(any_db: Database) -> None:
    ids = await _bot(any_db)
    run_id = await _start(any_db, ids)
    async with any_db.read() as session:
        running = await EvalRepository(session).running(ids[1])
    assert running is not None and running.id == run_id
    assert (running.status, running.done, running.total) == ("running", 0, 2)

    async with any_db.write() as session:
        await EvalRepository(session).progress(run_id, 1)
    summary = [{"label": "v1", "score": 1.0}, {"label": "draft", "score": 0.0}]
    transcript = [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello there"}]
    async with any_db.write() as session:
        stored = await EvalRepository(session).finish(
            run_id,
            results=[result("v1"), result("draft", "fail", transcript=transcript)],
            summary=summary,
            cost_usd=0.0,
        )
    assert stored
    async with any_db.read() as session:
        repo = EvalRepository(session)
        run = await repo.get(ids[1], run_id)
        kept = await repo.results(run_id)
        assert await repo.running(ids[1]) is None
    assert run is not None
    assert (run.status, run.done, run.summary, run.cost_usd) == ("done", 2, summary, 0.0)
    assert run.finished_at is not None
    assert [(r.version, r.outcome, r.transcript) for r in kept] == [
        ("v1", "pass", None),
        ("draft", "fail", transcript),
    ]
    assert kept[0].checks == [{"kind": "contains", "outcome": "pass", "reason": ""}]


async def test_a_failed_run_keeps_its_reason_and_is_never_finished_later(
    any_db: Database,
) -> None:
    ids = await _bot(any_db)
    run_id = await _start(any_db, ids)
    async with any_db.write() as session:
        await EvalRepository(session).fail(run_id, "interrupted: the service stopped")
    async with any_db.write() as session:
        stored = await EvalRepository(session).finish(
            run_id, results=[result("v1")], summary=[], cost_usd=None
        )
        await EvalRepository(session).fail(run_id, "a later reason")
    assert not stored
    async with any_db.read() as session:
        run = await EvalRepository(session).get(ids[1], run_id)
        assert await EvalRepository(session).results(run_id) == []
    assert run is not None
    assert (run.status, run.error) == ("failed", "interrupted: the service stopped")


async def test_the_unfinished_runs_of_gone_workers_are_failed(any_db: Database) -> None:
    ids = await _bot(any_db)
    other = await _bot(any_db, "other-bot")
    first = await _start(any_db, ids, worker="gone")
    async with any_db.write() as session:
        await EvalRepository(session).finish(first, results=[], summary=[], cost_usd=0.0)
    second = await _start(any_db, ids, worker="gone")
    elsewhere = await _start(any_db, other, worker="alive")
    async with any_db.read() as session:
        assert await EvalRepository(session).running_workers() == {"gone", "alive"}
    async with any_db.write() as session:
        repo = EvalRepository(session)
        assert await repo.fail_unfinished("interrupted by a restart", workers={"gone"}) == 1
    async with any_db.read() as session:
        runs = await EvalRepository(session).recent(ids[1])
        still = await EvalRepository(session).running(other[1])
    assert [(r.id, r.status, r.error) for r in runs] == [
        (second, "failed", "interrupted by a restart"),
        (first, "done", None),
    ]
    assert still is not None and still.id == elsewhere  # its worker is alive: it goes on
    assert await _start(any_db, ids) > elsewhere  # no longer running: a new run may start


async def test_runs_that_name_no_worker_are_failed_with_the_gone(any_db: Database) -> None:
    """Runs recorded before runs named their worker (None) belong to no live worker."""
    ids = await _bot(any_db)
    run = await _start(any_db, ids)
    async with any_db.write() as session:
        await session.exec(update(EvalRun).values(worker=None))
    async with any_db.write() as session:
        repo = EvalRepository(session)
        assert await repo.running_workers() == {None}
        assert await repo.fail_unfinished("interrupted", workers={"other"}) == 0
        assert await repo.fail_unfinished("interrupted", workers={None}) == 1
    async with any_db.read() as session:
        found = await EvalRepository(session).get(ids[1], run)
    assert found is not None and found.status == "failed"


async def test_a_bot_has_one_running_run_whatever_the_timing(any_db: Database) -> None:
    """The partial unique index decides, not a check before the insert; the refused insert
    leaves the transaction usable; a run that ended (failed or done) no longer counts."""
    ids = await _bot(any_db)
    other = await _bot(any_db, "other-bot")
    first = await _start(any_db, ids)
    await _start(any_db, other)  # another bot's run
    async with any_db.write() as session:
        repo = EvalRepository(session)
        with pytest.raises(DuplicateError):
            await repo.start(
                team_id=ids[0],
                bot_id=ids[1],
                dataset_id=ids[2],
                dataset_name="golden",
                dataset_hash="h1",
                versions=VERSIONS,
                total=2,
                started_by="web:bob",
                worker="w1",
            )
        running = await repo.running(ids[1])
        assert running is not None and running.id == first
    async with any_db.write() as session:
        await EvalRepository(session).fail(first, "interrupted: the service stopped")
    second = await _start(any_db, ids)
    async with any_db.write() as session:
        await EvalRepository(session).finish(second, results=[], summary=[], cost_usd=0.0)
    assert await _start(any_db, ids) > second


async def test_runs_are_found_per_bot_and_by_dataset(any_db: Database) -> None:
    ids = await _bot(any_db)
    other = await _bot(any_db, "other-bot")
    runs = [await _finished(any_db, ids, h) for h in ("h1", "h2", "h1")]
    foreign = await _finished(any_db, other, "h1")
    running = await _start(any_db, ids, "h1")
    async with any_db.read() as session:
        repo = EvalRepository(session)
        on_h1 = await repo.done_on(ids[1], dataset_hash="h1")
        named = await repo.done_on(ids[1], dataset_name="golden", before=runs[2])
        assert await repo.get(ids[1], foreign) is None  # another bot's run
        assert await repo.get(ids[1], running) is not None
    assert [r.id for r in on_h1] == [runs[2], runs[0]]
    assert [r.id for r in named] == [runs[1], runs[0]]


async def test_a_gate_is_set_replaced_and_removed(any_db: Database) -> None:
    _, bot_id, _ = await _bot(any_db)
    async with any_db.write() as session:
        await EvalRepository(session).set_gate(
            bot_id, dataset="golden", min_score=0.8, actor="web:alice"
        )
    async with any_db.write() as session:
        await EvalRepository(session).set_gate(
            bot_id, dataset="golden", min_score=0.9, actor="web:bob"
        )
    async with any_db.read() as session:
        gate = await EvalRepository(session).gate(bot_id)
    assert gate is not None
    assert (gate.dataset, gate.min_score, gate.updated_by) == ("golden", 0.9, "web:bob")
    async with any_db.write() as session:
        await EvalRepository(session).remove_gate(bot_id)
    async with any_db.read() as session:
        assert await EvalRepository(session).gate(bot_id) is None
