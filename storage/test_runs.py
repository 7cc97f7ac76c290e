"""Runs of a bot's test cases, keyed by the content hash of the draft they tested.

A run is `running` until it is finished (`done`, with one result per case) or has crashed
(`failed`). The table has no column for a crash's reason: a failed run's `results` hold one entry,
`{"error": reason}`, read back with `failure_reason`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import TestRun, utcnow

FinishedStatus = Literal["done", "failed"]
_REASON_CHARS = 500


def failure_reason(run: TestRun) -> str | None:
    """Why a `failed` run crashed; None for any other run."""
    if run.status != "failed" or not run.results:
        return None
    reason = run.results[0].get("error")
    return reason if isinstance(reason, str) else None


class TestRunRepository:
    __test__ = False  # not a pytest class

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def start(
        self, bot_id: int, spec_hash: str, total: int, started_by: str, *, worker: str
    ) -> TestRun:
        run = TestRun(
            bot_id=bot_id, spec_hash=spec_hash, total=total, started_by=started_by, worker=worker
        )
        self.session.add(run)
        await self.session.flush()
        return run

    async def finish(
        self,
        run_id: int,
        report_results: list[dict[str, Any]],
        passed: int,
        failed: int,
        status: FinishedStatus = "done",
    ) -> None:
        """Record the results. A run that no longer exists (its bot was deleted meanwhile) is
        left alone."""
        run = await self.session.get(TestRun, run_id)
        if run is None:
            return
        run.results = list(report_results)  # a new list: JSON columns miss in-place changes
        run.passed, run.failed, run.status = passed, failed, status
        run.finished_at = utcnow()
        self.session.add(run)
        await self.session.flush()

    async def fail(self, run_id: int, reason: str) -> None:
        """Mark a run that crashed. Only a `running` run changes: a late crash handler must not
        overwrite a finished report."""
        run = await self.session.get(TestRun, run_id)
        if run is None or run.status != "running":
            return
        run.results = [{"error": reason[:_REASON_CHARS]}]
        run.status = "failed"
        run.finished_at = utcnow()
        self.session.add(run)
        await self.session.flush()

    async def running_workers(self) -> set[str | None]:
        """The workers running runs now (None: a run recorded before runs named their worker)."""
        query = select(TestRun.worker).where(col(TestRun.status) == "running").distinct()
        return set((await self.session.exec(query)).all())

    async def fail_unfinished(self, reason: str, *, workers: Collection[str | None]) -> int:
        """Runs still `running` on `workers`, which are gone, marked failed so that a promotion
        does not wait for them for ever (None: runs that name no worker). How many."""
        named = [worker for worker in workers if worker is not None]
        whose = [col(TestRun.worker).in_(named)]
        if None in workers:
            whose.append(col(TestRun.worker).is_(None))
        result = await self.session.exec(
            update(TestRun)
            .where(col(TestRun.status) == "running", or_(*whose))
            .values(status="failed", results=[{"error": reason}], finished_at=utcnow())
        )
        return int(result.rowcount or 0)

    async def running_elsewhere(self, bot_id: int, *, worker: str) -> TestRun | None:
        """The bot's newest run still running on a worker other than `worker`."""
        query = (
            select(TestRun)
            .where(
                TestRun.bot_id == bot_id,
                col(TestRun.status) == "running",
                col(TestRun.worker) != worker,
            )
            .order_by(col(TestRun.id).desc())
            .limit(1)
        )
        return (await self.session.exec(query)).first()

    async def latest(self, bot_id: int, spec_hash: str) -> TestRun | None:
        """The newest run of the draft with exactly this content hash."""
        query = (
            select(TestRun)
            .where(TestRun.bot_id == bot_id, TestRun.spec_hash == spec_hash)
            .order_by(col(TestRun.id).desc())
            .limit(1)
        )
        return (await self.session.exec(query)).first()

    async def latest_for_bot(self, bot_id: int) -> TestRun | None:
        """The newest run of any draft of the bot."""
        query = (
            select(TestRun)
            .where(TestRun.bot_id == bot_id)
            .order_by(col(TestRun.id).desc())
            .limit(1)
        )
        return (await self.session.exec(query)).first()
