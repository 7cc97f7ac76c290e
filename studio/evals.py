"""`/eval`: evaluation runs and the evaluation gate on promotions.

A run scores versions of a bot (the draft, staging, production, vN) on a dataset's rows in the
background (`runtime.evaluation.run`: the one turn engine, mode "eval"), tells where it was asked
for how far it got at each quarter, then reports. It names the dataset's content by its hash
(kept as a snapshot), so a gate knows exactly what was scored. Bad input is refused in one line
before anything starts; one run per bot at a time.

The gate (`Operations.promotion_check`): with one set, a promotion (to production always, to
staging unless an owner forces it) needs a finished run on the gate dataset's current content that
scored exactly the spec being promoted (its content hash) at or above the minimum; the latest such
run decides.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from builders.dataset import DatasetContent
from builders.spec import MAX_VERSION, BotSpec
from runtime.cluster.presence import Presence, fail_orphaned
from runtime.evaluation.judge import NO_JUDGE_MODEL
from runtime.evaluation.run import (
    MAX_CONCURRENT_ROWS,
    RowResult,
    Target,
    score_versions,
    summarize,
)
from runtime.messages import Address
from runtime.pipeline import CompileError, compile_spec
from runtime.tasks import settle
from runtime.turn.runner import BotRunner
from storage.bots import ENVIRONMENTS, BotRepository
from storage.datasets import DatasetRepository, content_of
from storage.errors import DuplicateError
from storage.evals import EvalRepository
from storage.tables import Dataset, EvalGate, EvalResult, EvalRun
from studio import eval_report
from studio.commands import Command, EvalGateSet, EvalRuns
from studio.commands import EvalRun as EvalRunCommand
from studio.errors import ConflictError, InvalidError, NotFoundError
from studio.eval_chart import Point, trend_chart
from studio.operations import DraftRef, Operations, audit
from studio.presenters import one_line
from studio.replies import Answer
from studio.roles import Caller, Role

logger = logging.getLogger(__name__)

EVAL_COMMANDS: tuple[type[Command], ...] = (EvalRunCommand, EvalRuns, EvalGateSet)
Push = Callable[[Address, Answer], Awaitable[None]]
RECENT_RUNS = 10
_GATE_RUNS = 200  # finished runs on a gate's dataset content searched for the promoted spec
_NUMBERED = re.compile(r"v?(\d{1,10})")
_NAME_CHARS = 40


@dataclass(frozen=True, slots=True)
class _Version:
    """A version a run scores. `spec_hash` is what the gate compares: a numbered version's as
    stored when it was frozen (a spec read again may hash otherwise once `BotSpec` gained a
    field), the draft's as computed now (what promoting it freezes)."""

    label: str  # "v3", "draft"
    ref: str  # as asked for: "staging", "v3", "draft"
    number: int | None
    spec: BotSpec
    spec_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "number": self.number,
            "spec_hash": self.spec_hash,
            "ref": self.ref,
        }


@dataclass(frozen=True, slots=True)
class Started:
    """A run recorded as started, and what it scores."""

    bot: str
    bot_id: int
    team_id: int
    run: EvalRun
    content: DatasetContent
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class RunDetail:
    bot: str
    run: EvalRun
    results: list[EvalResult]
    # The dataset as the run scored it (its snapshot), when results were asked for and the
    # dataset still exists: what each result's row said.
    content: DatasetContent | None = None


class EvalFeature:
    """What `/eval` does, for the engine (which resolves the bot) and REST."""

    def __init__(
        self,
        *,
        ops: Operations,
        runner: BotRunner,
        judge_model: str | None,
        push: Push,
        concurrency: int = MAX_CONCURRENT_ROWS,
    ) -> None:
        self.ops = ops
        self.db = ops.db
        self.runner = runner
        self.judge_model = judge_model
        self.push = push
        self.concurrency = concurrency
        self._jobs: set[asyncio.Task[None]] = set()
        ops.promotion_check = self.check_promotion

    async def run(self, caller: Caller, bot: str, command: Command, where: Address) -> Answer:
        if isinstance(command, EvalRunCommand):
            started = await self.start(
                caller, bot, dataset=command.dataset, versions=command.versions, where=where
            )
            return eval_report.started(started.bot, started.run, len(started.content.rows))
        if isinstance(command, EvalRuns):
            if command.run is None:
                draft = await self.ops.draft(caller, bot)
                return eval_report.run_list(draft.name, await self.runs(caller, bot))
            return await self.report(await self.detail(caller, bot, command.run))
        assert isinstance(command, EvalGateSet)
        if command.off:
            return eval_report.gate_removed(bot, await self.remove_gate(caller, bot))
        if command.dataset is None and command.min_score is None:
            draft = await self.ops.draft(caller, bot)
            return eval_report.gate(draft.name, await self.gate(caller, bot))
        if command.dataset is None or command.min_score is None:
            missing = "the dataset" if command.dataset is None else "the score it needs"
            raise InvalidError(f"say {missing} too: /eval {bot} gate DATASET 80%")
        found = await self.set_gate(caller, bot, command.dataset, command.min_score)
        return eval_report.gate_set(bot, found)

    # -- runs --------------------------------------------------------------------------------

    async def start(
        self,
        caller: Caller,
        bot: str,
        *,
        dataset: str | None,
        versions: Sequence[str],
        where: Address | None,
    ) -> Started:
        """Check everything, record the run and start it in the background (editors); it
        reports to `where` (None: nowhere, REST reads it)."""
        caller.require(Role.EDITOR, "Running an evaluation")
        draft = await self.ops.draft(caller, bot)
        async with self.db.write() as session:
            datasets = DatasetRepository(session)
            found, refs = await _dataset(datasets, draft, dataset, list(versions))
            content = content_of(found)
            self._scorable(draft.name, found.name, content)
            chosen = await _versions(session, draft, refs)
            targets = tuple(_compiled(version) for version in chosen)
            repo = EvalRepository(session)
            assert found.id is not None  # its content is kept under its hash (`save`)
            try:
                run = await repo.start(
                    team_id=caller.team_id,
                    bot_id=draft.bot_id,
                    dataset_id=found.id,
                    dataset_name=found.name,
                    dataset_hash=found.content_hash,
                    versions=[version.to_json() for version in chosen],
                    total=len(content.rows) * len(chosen),
                    started_by=caller.identity,
                    worker=self.db.worker,
                )
            except DuplicateError:  # the partial unique index: one running run per bot
                raise ConflictError(_busy(draft.name, await repo.running(draft.bot_id))) from None
            await audit(
                session,
                caller,
                action="eval.run",
                target=draft.name,
                after={
                    "run": run.id,
                    "dataset": found.name,
                    "dataset_hash": found.content_hash,
                    "versions": [version.label for version in chosen],
                },
            )
        started = Started(draft.name, draft.bot_id, caller.team_id, run, content, targets)
        task = asyncio.create_task(self._job(started, where))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return started

    def _scorable(self, bot: str, dataset: str, content: DatasetContent) -> None:
        problems = content.unscorable()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise InvalidError(
                f"{dataset} cannot be scored as it is: {problems[0]}{more}. Set it: "
                f'/dataset {bot} expect {dataset} ROW "VALUE"'
            )
        kinds = {e.kind for row in content.rows for e in content.evaluators_of(row)}
        if self.judge_model is None and kinds & {"judge", "simulated"}:
            raise ConflictError(NO_JUDGE_MODEL)

    async def _job(self, started: Started, where: Address | None) -> None:
        """The background part of a run: progress at each quarter, the report at the end."""
        run_id = started.run.id
        assert run_id is not None
        reported = 0

        async def progress(done: int, total: int) -> None:
            nonlocal reported
            quarter = done * 4 // total
            if total < 4 or done >= total or quarter <= reported:
                return
            reported = quarter
            async with self.db.write() as session:
                await EvalRepository(session).progress(run_id, done)
            if where is not None:
                await self._tell(where, eval_report.progress(started.bot, done, total))

        try:
            results = await score_versions(
                started.content,
                list(started.targets),
                runner=self.runner,
                judge_model=self.judge_model,
                bot_id=started.bot_id,
                team_id=started.team_id,
                progress=progress,
                concurrency=self.concurrency,
            )
            await self._finish(run_id, started, results)
        except asyncio.CancelledError:
            await self._fail(run_id, "interrupted: the service stopped")
            raise
        except Exception as exc:
            logger.exception("evaluation run failed", extra={"bot": started.bot, "run": run_id})
            await self._fail(run_id, f"failed on our side ({type(exc).__name__}; it is logged)")
            if where is not None:
                await self._tell(where, eval_report.failed(started.bot, run_id))
            return
        if where is not None:
            async with self.db.read() as session:
                repo = EvalRepository(session)
                run = await repo.get(started.bot_id, run_id)
                kept = await repo.results(run_id)
            if run is not None:
                await self._tell(where, await self.report(RunDetail(started.bot, run, kept)))

    async def _finish(self, run_id: int, started: Started, results: list[RowResult]) -> None:
        scores = summarize(results, [target.label for target in started.targets])
        unpriced = sum(score.unpriced for score in scores)
        async with self.db.write() as session:
            await EvalRepository(session).finish(
                run_id,
                results=[result.to_json() for result in results],
                summary=[score.to_json() for score in scores],
                cost_usd=None if unpriced else sum(score.cost_usd for score in scores),
            )

    async def _fail(self, run_id: int, reason: str) -> None:
        async with self.db.write() as session:
            await EvalRepository(session).fail(run_id, reason)

    async def _tell(self, where: Address, answer: Answer) -> None:
        try:
            await self.push(where, answer)
        except Exception:  # a report that cannot be sent must not fail the run
            logger.exception("an evaluation message was not sent")

    async def runs(self, caller: Caller, bot: str) -> list[EvalRun]:
        """The bot's latest runs, newest first (any member)."""
        draft = await self.ops.draft(caller, bot)
        async with self.db.read() as session:
            return await EvalRepository(session).recent(draft.bot_id, RECENT_RUNS)

    async def detail(
        self, caller: Caller, bot: str, run_id: int, *, results: bool = True
    ) -> RunDetail:
        """One run of the bot, with its per-row results unless not wanted (any member)."""
        draft = await self.ops.draft(caller, bot)
        async with self.db.read() as session:
            repo = EvalRepository(session)
            run = await repo.get(draft.bot_id, run_id)
            if run is None:
                raise NotFoundError(f"{draft.name} has no evaluation run {run_id}")
            kept = await repo.results(run_id) if results else []
            content = None
            if results and run.dataset_id is not None:
                content = await DatasetRepository(session).snapshot(
                    run.dataset_id, run.dataset_hash
                )
        return RunDetail(draft.name, run, kept, content)

    async def report(self, detail: RunDetail) -> Answer:
        chart = None
        if detail.run.status == "done":
            chart = await self.chart(detail)
        return eval_report.report(detail.bot, detail.run, detail.results, chart)

    async def chart(self, detail: RunDetail) -> bytes:
        """The trend chart of a finished run: its versions' scores and, for versions it did not
        score, their latest earlier finished run on a dataset of the same name."""
        run = detail.run
        if run.status != "done" or run.summary is None:
            raise ConflictError(f"run {run.id} has no scores yet: it is {run.status}")
        async with self.db.read() as session:
            earlier = await EvalRepository(session).done_on(
                run.bot_id, dataset_name=run.dataset_name, before=run.id
            )
        ordered = trend_points(run, earlier)
        return await trend_chart(f"{detail.bot} on {run.dataset_name}", ordered)

    async def drain(self, *, grace_s: float | None = None) -> None:
        """Wait for background runs; with `grace_s`, cancel those still running after it (they
        are marked failed)."""
        await settle(self._jobs, grace_s=grace_s)

    async def fail_orphaned(self, presence: Presence) -> None:
        """Runs left running by a worker that is gone (stopped, crashed) are marked failed;
        those of live workers go on."""
        why = "interrupted by a restart: run it again"
        count = await fail_orphaned(self.db, EvalRepository, presence, why=why)
        if count:
            logger.info("marked %d unfinished evaluation runs failed", count)

    # -- the gate ----------------------------------------------------------------------------

    async def gate(self, caller: Caller, bot: str) -> EvalGate | None:
        draft = await self.ops.draft(caller, bot)
        async with self.db.read() as session:
            return await EvalRepository(session).gate(draft.bot_id)

    async def set_gate(
        self, caller: Caller, bot: str, dataset: str, min_percent: float
    ) -> EvalGate:
        """Promotions need `min_percent` on `dataset`, which must exist (admins)."""
        caller.require(Role.ADMIN, "Setting an evaluation gate")
        draft = await self.ops.draft(caller, bot)
        async with self.db.write() as session:
            datasets = DatasetRepository(session)
            found = await datasets.get(draft.bot_id, dataset.lower())
            if found is None:
                known = await datasets.for_bot(draft.bot_id)
                raise NotFoundError(_no_dataset(draft.name, dataset, known))
            repo = EvalRepository(session)
            before = _gate_json(await repo.gate(draft.bot_id))
            gate = await repo.set_gate(
                draft.bot_id,
                dataset=found.name,
                min_score=min_percent / 100,
                actor=caller.identity,
            )
            await audit(
                session,
                caller,
                action="eval.gate",
                target=draft.name,
                before=before,
                after=_gate_json(gate),
            )
        return gate

    async def remove_gate(self, caller: Caller, bot: str) -> EvalGate | None:
        """No gate any more (admins); the gate there was, if any."""
        caller.require(Role.ADMIN, "Removing an evaluation gate")
        draft = await self.ops.draft(caller, bot)
        async with self.db.write() as session:
            repo = EvalRepository(session)
            had = await repo.gate(draft.bot_id)
            if had is None:
                return None
            before = _gate_json(had)
            await repo.remove_gate(draft.bot_id)
            await audit(
                session,
                caller,
                action="eval.gate.remove",
                target=draft.name,
                before=before,
            )
        return had

    async def check_promotion(
        self, caller: Caller, bot_id: int, name: str, ref: str, spec_hash: str
    ) -> None:
        """`Operations.promotion_check`: refuse (409) a promotion the gate does not allow."""
        async with self.db.read() as session:
            repo = EvalRepository(session)
            gate = await repo.gate(bot_id)
            if gate is None:
                return
            dataset = await DatasetRepository(session).get(bot_id, gate.dataset)
            if dataset is None:
                raise ConflictError(
                    f"not promoted: {name}'s evaluation gate needs the dataset {gate.dataset}, "
                    f"which is gone: make it again, or remove the gate (/eval {name} gate off)"
                )
            runs = await repo.done_on(bot_id, dataset_hash=dataset.content_hash, limit=_GATE_RUNS)
        score = _latest_score(runs, spec_hash)
        if score is None:
            what = "this draft" if ref == "draft" else ref
            raise ConflictError(
                f"not promoted: {name} has no evaluation of {what} on {gate.dataset} yet: "
                f"/eval {name} {gate.dataset} {ref}"
            )
        if score + 1e-9 < gate.min_score:
            raise ConflictError(
                f"not promoted: {name} scored {eval_report.percent(score)} on {gate.dataset} "
                f"(needs {eval_report.percent(gate.min_score)})"
            )


def trend_points(run: EvalRun, earlier: Sequence[EvalRun]) -> list[Point]:
    """The scores `run` gave its versions and, for numbered versions it did not score, the
    newest of `earlier` runs' (newest first) that did; in number order, the draft last."""
    numbers: dict[str, int | None] = {}
    points: dict[str, Point] = {}
    for other in [run, *earlier]:
        current = other is run
        for version, score in zip(other.versions, other.summary or [], strict=False):
            label = version["label"]
            # an earlier draft was another draft: only numbered versions are the same
            if label in points or score["score"] is None or (not current and label == "draft"):
                continue
            points[label] = Point(label, score["score"], current)
            numbers[label] = version["number"]
    return sorted(points.values(), key=lambda point: _order(numbers[point.label]))


def _order(number: int | None) -> tuple[bool, int]:
    """Versions in number order, the draft last."""
    return number is None, number or 0


def _busy(bot: str, running: EvalRun | None) -> str:
    """The refusal of a second run; `running` None: it ended meanwhile."""
    if running is None:
        return f"{bot} was being evaluated a moment ago: say it again"
    return (
        f"{bot} is already being evaluated (run {running.id}, {running.done}/{running.total}): "
        "wait for its report"
    )


def _gate_json(gate: EvalGate | None) -> dict[str, Any] | None:
    return None if gate is None else {"dataset": gate.dataset, "min_score": gate.min_score}


def _latest_score(runs: Sequence[EvalRun], spec_hash: str) -> float | None:
    """The score of `spec_hash` in the newest of `runs` that scored it (None: none did, or it
    could not be scored at all)."""
    for run in runs:
        for version, score in zip(run.versions, run.summary or [], strict=False):
            if version.get("spec_hash") == spec_hash:
                found = score.get("score")
                return float(found) if found is not None else 0.0
    return None


def _clip(text: str) -> str:
    return one_line(text, _NAME_CHARS)


def _is_version(word: str) -> bool:
    lowered = word.strip().lower()
    return lowered in ("draft", *ENVIRONMENTS) or _NUMBERED.fullmatch(lowered) is not None


def _no_dataset(bot: str, name: str, found: Sequence[Dataset]) -> str:
    if not found:
        return f"{bot} has no dataset '{_clip(name)}' (it has none yet)"
    return f"{bot} has no dataset '{_clip(name)}'; it has: {', '.join(d.name for d in found)}"


async def _dataset(
    repo: DatasetRepository, draft: DraftRef, name: str | None, refs: list[str]
) -> tuple[Dataset, list[str]]:
    """The dataset asked for (by default the bot's only one), and the version refs: a first
    word that names a version rather than a dataset is a version."""
    found = await repo.for_bot(draft.bot_id)
    if name is not None:
        match = next((d for d in found if d.name == name.strip().lower()), None)
        if match is not None:
            return match, refs
        if not _is_version(name):
            raise NotFoundError(_no_dataset(draft.name, name, found))
        refs = [name, *refs]
    if not found:
        raise ConflictError(
            f"{draft.name} has no datasets yet: make one with /dataset {draft.name} from-last 50 "
            "(or from-tests, or share a CSV)"
        )
    if len(found) > 1:
        raise InvalidError(f"which dataset? {', '.join(d.name for d in found)}")
    return found[0], refs


async def _versions(session: AsyncSession, draft: DraftRef, refs: list[str]) -> list[_Version]:
    """The versions asked for (default: staging and the draft, or the draft alone), each once,
    in number order with the draft last."""
    repo = BotRepository(session)
    pointers = await repo.pointers(draft.bot_id)
    bot = await repo.by_id(draft.bot_id)
    if bot is None:
        raise NotFoundError(f"No bot named '{draft.name}'.")
    asked = refs or (["staging", "draft"] if "staging" in pointers else ["draft"])
    chosen: dict[str, _Version] = {}
    for ref in asked:
        word = ref.strip().lower()
        if word == "draft":
            spec = BotSpec.model_validate(bot.draft)
            version = _Version("draft", "draft", None, spec, spec.content_hash())
        else:
            number = _number(draft.name, word, pointers)
            row = await repo.version(draft.bot_id, number)
            if row is None:
                raise NotFoundError(f"{draft.name} has no version v{number}")
            spec = BotSpec.model_validate(row.spec)
            version = _Version(f"v{number}", word, number, spec, row.spec_hash)
        chosen.setdefault(version.label, version)  # the first ref names it ("staging")
    return sorted(chosen.values(), key=lambda v: _order(v.number))


def _number(bot: str, word: str, pointers: dict[str, Any]) -> int:
    if word in ENVIRONMENTS:
        pointer = pointers.get(word)
        if pointer is None:
            raise ConflictError(f"{bot} has no {word} version yet")
        return int(pointer.number)
    match = _NUMBERED.fullmatch(word)
    if match is None:
        raise InvalidError(
            f"'{_clip(word)}' is not a version: use draft, staging, production or v3"
        )
    number = int(match[1])
    if not 1 <= number <= MAX_VERSION:
        raise InvalidError(f"no such version: version numbers go from v1 to v{MAX_VERSION}")
    return number


def _compiled(version: _Version) -> Target:
    try:
        bot = compile_spec(version.spec)
    except CompileError as exc:
        raise InvalidError(f"{version.label} cannot run: {exc}") from None
    return Target(version.label, version.number, bot)
