"""Evaluation runs (`eval_run`), their per-row results (`eval_result`) and a bot's evaluation
gate (`eval_gate`).

A run is `running` until it is finished (`done`: its results are written with its summary, in
one transaction) or has crashed or was interrupted (`failed`, with the reason in `error`). A bot
has at most one running run: a partial unique index decides, whatever the timing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import insert, or_, update
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.errors import add_unique
from storage.tables import EvalGate, EvalResult, EvalRun, utcnow

_REASON_CHARS = 500
_result_table = EvalResult.__table__  # type: ignore[attr-defined]


class EvalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- runs --------------------------------------------------------------------------------

    async def start(
        self,
        *,
        team_id: int,
        bot_id: int,
        dataset_id: int,
        dataset_name: str,
        dataset_hash: str,
        versions: list[dict[str, Any]],
        total: int,
        started_by: str,
        worker: str,
    ) -> EvalRun:
        """Record a run as running; `DuplicateError` (the transaction still usable) when the bot
        has one running already."""
        run = EvalRun(
            team_id=team_id,
            bot_id=bot_id,
            dataset_id=dataset_id,
            dataset_name=dataset_name,
            dataset_hash=dataset_hash,
            versions=versions,
            total=total,
            started_by=started_by,
            worker=worker,
        )
        await add_unique(self.session, run, "the bot has a run still going")
        return run

    async def running(self, bot_id: int) -> EvalRun | None:
        """The bot's run still going, if any."""
        query = select(EvalRun).where(EvalRun.bot_id == bot_id, EvalRun.status == "running")
        return (await self.session.exec(query.limit(1))).first()

    async def progress(self, run_id: int, done: int) -> None:
        await self.session.exec(
            update(EvalRun)
            .where(col(EvalRun.id) == run_id, col(EvalRun.status) == "running")
            .values(done=done)
        )

    async def finish(
        self,
        run_id: int,
        *,
        results: list[dict[str, Any]],
        summary: list[dict[str, Any]],
        cost_usd: float | None,
    ) -> bool:
        """Keep the results and the summary of a run still `running`; False (nothing written)
        when it is not (marked failed meanwhile) or no longer exists."""
        marked = await self.session.exec(
            update(EvalRun)
            .where(col(EvalRun.id) == run_id, col(EvalRun.status) == "running")
            .values(
                status="done",
                done=len(results),
                summary=summary,
                cost_usd=cost_usd,
                finished_at=utcnow(),
            )
        )
        if not marked.rowcount:
            return False
        if results:
            await self.session.exec(
                insert(_result_table), params=[{"run_id": run_id, **row} for row in results]
            )
        return True

    async def fail(self, run_id: int, reason: str) -> None:
        """Mark a run that crashed or was stopped; a finished run is left alone."""
        await self.session.exec(
            update(EvalRun)
            .where(col(EvalRun.id) == run_id, col(EvalRun.status) == "running")
            .values(status="failed", error=reason[:_REASON_CHARS], finished_at=utcnow())
        )

    async def running_workers(self) -> set[str | None]:
        """The workers running runs now (None: a run recorded before runs named their worker)."""
        query = select(EvalRun.worker).where(col(EvalRun.status) == "running").distinct()
        return set((await self.session.exec(query)).all())

    async def fail_unfinished(self, reason: str, *, workers: Collection[str | None]) -> int:
        """Runs still `running` on `workers`, which are gone, marked failed (None: runs that
        name no worker). How many."""
        named = [worker for worker in workers if worker is not None]
        whose = [col(EvalRun.worker).in_(named)]
        if None in workers:
            whose.append(col(EvalRun.worker).is_(None))
        result = await self.session.exec(
            update(EvalRun)
            .where(col(EvalRun.status) == "running", or_(*whose))
            .values(status="failed", error=reason[:_REASON_CHARS], finished_at=utcnow())
        )
        return int(result.rowcount or 0)

    async def get(self, bot_id: int, run_id: int) -> EvalRun | None:
        """The bot's run `run_id` (None: none, or another bot's)."""
        run = await self.session.get(EvalRun, run_id)
        return run if run is not None and run.bot_id == bot_id else None

    async def recent(self, bot_id: int, limit: int = 10) -> list[EvalRun]:
        query = (
            select(EvalRun)
            .where(EvalRun.bot_id == bot_id)
            .order_by(col(EvalRun.id).desc())
            .limit(limit)
        )
        return list((await self.session.exec(query)).all())

    async def results(self, run_id: int) -> list[EvalResult]:
        """A run's results, row by row (in the dataset's order) and version by version."""
        query = select(EvalResult).where(EvalResult.run_id == run_id).order_by(col(EvalResult.id))
        return list((await self.session.exec(query)).all())

    async def done_on(
        self, bot_id: int, *, dataset_name: str | None = None, dataset_hash: str | None = None,
        before: int | None = None, limit: int = 50,
    ) -> list[EvalRun]:  # fmt: skip
        """The bot's finished runs, newest first: on a dataset of that name, or on exactly that
        content, before run `before`."""
        query = select(EvalRun).where(EvalRun.bot_id == bot_id, EvalRun.status == "done")
        if dataset_name is not None:
            query = query.where(EvalRun.dataset_name == dataset_name)
        if dataset_hash is not None:
            query = query.where(EvalRun.dataset_hash == dataset_hash)
        if before is not None:
            query = query.where(col(EvalRun.id) < before)
        query = query.order_by(col(EvalRun.id).desc()).limit(limit)
        return list((await self.session.exec(query)).all())

    # -- the gate ----------------------------------------------------------------------------

    async def gate(self, bot_id: int) -> EvalGate | None:
        return await self.session.get(EvalGate, bot_id)

    async def set_gate(
        self, bot_id: int, *, dataset: str, min_score: float, actor: str
    ) -> EvalGate:
        gate = await self.gate(bot_id)
        if gate is None:
            gate = EvalGate(bot_id=bot_id, dataset=dataset, min_score=min_score, updated_by=actor)
        else:
            gate.dataset, gate.min_score = dataset, min_score
            gate.updated_by, gate.updated_at = actor, utcnow()
        self.session.add(gate)
        await self.session.flush()
        return gate

    async def remove_gate(self, bot_id: int) -> None:
        await self.session.exec(delete(EvalGate).where(col(EvalGate.bot_id) == bot_id))
