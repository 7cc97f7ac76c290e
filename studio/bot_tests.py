"""A bot's test cases: adding, listing and removing them (they live in the draft), and runs.

A run tests the draft as it is when the run starts and is stored under the draft's content hash,
so a promotion knows whether exactly what it freezes passed (see `Operations.promote`); a promotion
that finds no such run starts one (`promote` here for REST, the Studio's `/promote` in the
background).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from builders.spec import BotSpec, Expectation, TestCase
from builders.validation import human_problems
from runtime.cluster.presence import Presence, fail_orphaned
from runtime.turn.runner import BotRunner
from storage.database import Database
from storage.tables import TestRun
from storage.test_runs import TestRunRepository, failure_reason
from studio import presenters
from studio.errors import ConflictError, InvalidError
from studio.operations import Operations
from studio.roles import Caller, Role
from studio.test_report import CaseResult, TestReport
from studio.testing import Progress, run_cases
from studio.views import BotView, PromoteResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A run recorded as started: the exact draft it tests."""

    run_id: int
    bot_id: int
    team_id: int
    bot: str
    revision: int
    spec: BotSpec


@dataclass(frozen=True, slots=True)
class RunElsewhere:
    """A run of a bot's draft in progress on another worker (several share the database): who
    asks for a run here meanwhile joins it."""

    run_id: int
    bot: str
    current: bool  # it tests the draft as it is now


class BotTests:
    def __init__(
        self, *, db: Database, ops: Operations, runner: BotRunner, judge_model: str | None
    ) -> None:
        self.db = db
        self.ops = ops
        self.runner = runner
        self.judge_model = judge_model

    async def cases(self, caller: Caller, bot: str) -> list[TestCase]:
        return list((await self.ops.draft(caller, bot)).spec.tests)

    async def add(self, caller: Caller, bot: str, case: TestCase) -> tuple[int, BotView]:
        """Append a case to the draft; returns its number (1-based) and the edited bot."""
        draft = await self.ops.draft(caller, bot)
        cases = [*draft.spec.tests, case]
        view = await self.ops.edit_draft(
            caller,
            bot,
            {"tests": [c.model_dump(mode="json") for c in cases]},
            revision=draft.revision,
        )
        return len(cases), view

    async def add_simple(
        self, caller: Caller, bot: str, *, text: str, kind: str, value: str
    ) -> tuple[int, BotView]:
        try:
            expect = Expectation.model_validate({"kind": kind, "value": value})
        except ValidationError as exc:
            raise InvalidError("; ".join(human_problems(exc))) from None
        case = TestCase(turns=[text], expect=expect)
        return await self.add(caller, bot, case)

    async def remove(self, caller: Caller, bot: str, number: int) -> BotView:
        draft = await self.ops.draft(caller, bot)
        count = len(draft.spec.tests)
        if not 1 <= number <= count:
            have = f"a number from 1 to {count}" if count else "none: it has no tests"
            raise InvalidError(f"{draft.name} has {count} test(s); say {have}")
        kept = [c for i, c in enumerate(draft.spec.tests, start=1) if i != number]
        return await self.ops.edit_draft(
            caller,
            bot,
            {"tests": [c.model_dump(mode="json") for c in kept]},
            revision=draft.revision,
        )

    async def prepare(self, caller: Caller, bot: str) -> PreparedRun:
        """Record a run of the current draft as started (editors and up)."""
        caller.require(Role.EDITOR, "Running tests")
        draft = await self.ops.draft(caller, bot)
        if not draft.spec.tests:
            raise InvalidError(
                f'{draft.name} has no tests yet: /test {draft.name} add "INPUT" expect contains '
                '"VALUE"'
            )
        async with self.db.write() as session:
            run = await TestRunRepository(session).start(
                draft.bot_id,
                draft.spec.content_hash(),
                len(draft.spec.tests),
                caller.identity,
                worker=self.db.worker,
            )
        assert run.id is not None
        return PreparedRun(
            run.id, draft.bot_id, caller.team_id, draft.name, draft.revision, draft.spec
        )

    async def running_elsewhere(self, caller: Caller, bot: str) -> RunElsewhere | None:
        """The bot's run in progress on another worker, if any (editors and up). On SQLite one
        process owns the data: a run another left `running` is a stopped process's, which the
        leader's sweep marks failed, so there is none to join."""
        caller.require(Role.EDITOR, "Running tests")
        if self.db.is_sqlite:
            return None
        draft = await self.ops.draft(caller, bot)
        async with self.db.read() as session:
            run = await TestRunRepository(session).running_elsewhere(
                draft.bot_id, worker=self.db.worker
            )
        if run is None:
            return None
        assert run.id is not None
        return RunElsewhere(run.id, draft.name, run.spec_hash == draft.spec.content_hash())

    async def ended(self, run: RunElsewhere) -> TestReport | str | None:
        """How a run ended: its report, or why it did not finish; None while it runs."""
        async with self.db.read() as session:
            found = await session.get(TestRun, run.run_id)
        if found is None:
            return "its bot was deleted"
        if found.status == "running":
            return None
        if found.status == "done":
            results = tuple(CaseResult.from_json(r) for r in found.results or ())
            return TestReport(bot=run.bot, spec_hash=found.spec_hash, results=results)
        return failure_reason(found) or "interrupted"

    async def execute(self, prepared: PreparedRun, progress: Progress | None = None) -> TestReport:
        """Run the prepared cases and store the outcome; a crash marks the run failed."""
        try:
            report = await run_cases(
                prepared.spec,
                runner=self.runner,
                judge_model=self.judge_model,
                progress=progress,
                bot_id=prepared.bot_id,
                team_id=prepared.team_id,
            )
        except BaseException as exc:  # cancelled at shutdown too: the run must not stay running
            why = "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)[:300]
            async with self.db.write() as session:
                await TestRunRepository(session).fail(prepared.run_id, why)
            raise
        report = TestReport(bot=prepared.bot, spec_hash=report.spec_hash, results=report.results)
        async with self.db.write() as session:
            await TestRunRepository(session).finish(
                prepared.run_id,
                [r.to_json() for r in report.results],
                report.passed,
                report.failed,
            )
        return report

    async def fail_orphaned(self, presence: Presence) -> None:
        """Runs left `running` by a worker that is gone (stopped, crashed) are marked failed;
        those of live workers go on."""
        why = "interrupted by a restart"
        count = await fail_orphaned(self.db, TestRunRepository, presence, why=why)
        if count:
            logger.info("marked %d unfinished test runs failed", count)

    async def run(self, caller: Caller, bot: str) -> TestReport:
        """Run the draft's tests now and wait for the report (REST)."""
        return await self.execute(await self.prepare(caller, bot))

    async def promote(self, caller: Caller, bot: str, *, to: str, force: bool) -> PromoteResult:
        """Promote, first running the draft's tests when the promotion needs a run of exactly
        this draft and has none; waits for the run, and refuses (409) when a case fails."""
        if await self.ops.needs_test_run(caller, bot, to=to, force=force):
            report = await self.run(caller, bot)
            if not report.ok:
                raise ConflictError(presenters.not_promoted(report))
        return await self.ops.promote(caller, bot, to=to, force=force)
