"""An evaluation run: each version of a bot scored on each row of a dataset.

Each (row, version) is answered through the one turn engine (`BotRunner.run`, mode "eval") in a
conversation of its own seeded with the row's history, then scored by the row's evaluators and
the dataset's. A row's score is the mean of its evaluators' (pass 1, fail 0; an evaluator that
errored does not count); a row none of them could score is an error. A version's score is the
mean over its rows, an error row counting 0: a version that cannot answer never scores well.

Nothing here raises for a model's failure (it is a row's or an evaluator's error, with the
reason); a bug anywhere else cancels the run and propagates.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from builders.dataset import DatasetContent, DatasetRow
from runtime.evaluation.checks import Outcome, clip
from runtime.evaluation.evaluators import Answered, Check, check, total
from runtime.evaluation.simulated import simulate
from runtime.llm import ChatMessage
from runtime.pipeline import CompiledBot, TurnOutput
from runtime.turn.runner import BotRunner
from runtime.turn.session import EphemeralSession

logger = logging.getLogger(__name__)

MAX_CONCURRENT_ROWS = 4
ANSWER_CHARS = 2_000  # what a result keeps of an answer
_TRANSCRIPT_CHARS = 4_000  # of each message a result keeps

Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Target:
    """A version to score: its label ("v3", "draft"), number (None: the draft) and pipeline."""

    label: str
    number: int | None
    bot: CompiledBot


@dataclass(frozen=True, slots=True)
class RowResult:
    """One row scored on one version. `cost_usd` is everything the row cost (the bot's turns
    and the judge's calls), None when a price is unknown; `known_cost_usd` the part known."""

    row_id: int
    version: str
    outcome: Outcome
    score: float | None
    answer: str
    latency_ms: float | None  # the slowest of the row's answers
    cost_usd: float | None
    known_cost_usd: float
    checks: tuple[Check, ...]
    transcript: tuple[ChatMessage, ...] | None = None  # multi-turn and simulated rows

    def to_json(self) -> dict[str, Any]:
        """As `storage.evals` keeps it (an `EvalResult` row)."""
        return {
            "row_id": str(self.row_id),
            "version": self.version,
            "outcome": self.outcome,
            "score": self.score,
            "answer": self.answer,
            "latency_ms": self.latency_ms,
            "cost_usd": self.cost_usd,
            "checks": [c.to_json() for c in self.checks],
            "transcript": (
                [_said(message) for message in self.transcript]
                if self.transcript is not None
                else None
            ),
        }


def _said(message: ChatMessage) -> dict[str, str]:
    return {"role": message.role, "text": clip(message.content, _TRANSCRIPT_CHARS)}


@dataclass(frozen=True, slots=True)
class VersionScore:
    """A version's totals in a run. `cost_usd` is the known part; `unpriced` counts the rows
    whose cost is not (fully) known."""

    label: str
    score: float | None  # 0..1; None: no rows
    passed: int
    failed: int
    errors: int
    p50_ms: float | None
    cost_usd: float
    unpriced: int

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": self.score,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "p50_ms": self.p50_ms,
            "cost_usd": self.cost_usd,
            "unpriced": self.unpriced,
        }


async def score_versions(
    content: DatasetContent,
    targets: list[Target],
    *,
    runner: BotRunner,
    judge_model: str | None,
    bot_id: int | None = None,
    team_id: int | None = None,
    progress: Progress | None = None,
    concurrency: int = MAX_CONCURRENT_ROWS,
) -> list[RowResult]:
    """Every row on every version, at most `concurrency` at once; results row by row, each
    row's versions in the order given. `progress(done, total)` is awaited after each, in
    increasing order of `done`; a progress reporter that raises is logged and ignored."""
    pairs = [(row, target) for row in content.rows for target in targets]
    results: list[RowResult | None] = [None] * len(pairs)
    work: Iterator[int] = iter(range(len(pairs)))
    reporting = asyncio.Lock()
    done = 0

    async def worker() -> None:
        nonlocal done
        for index in work:  # one iterator shared by the workers: each pair is taken once
            row, target = pairs[index]
            results[index] = await score_row(
                content,
                row,
                target,
                runner=runner,
                judge_model=judge_model,
                bot_id=bot_id,
                team_id=team_id,
            )
            if progress is None:
                continue
            async with reporting:  # one report at a time, so `done` arrives in order
                done += 1
                try:
                    await progress(done, len(pairs))
                except Exception:
                    logger.exception("evaluation progress reporter failed", extra={"bot": bot_id})

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(pairs))):
                group.create_task(worker())
    except ExceptionGroup as crashed:  # a bug: the caller gets the first error itself
        raise crashed.exceptions[0] from None
    return [result for result in results if result is not None]


async def score_row(
    content: DatasetContent,
    row: DatasetRow,
    target: Target,
    *,
    runner: BotRunner,
    judge_model: str | None,
    bot_id: int | None,
    team_id: int | None,
) -> RowResult:
    """Answer the row's turns with `target` and score the last answer; a simulated-user
    evaluator plays its own conversation. A turn that fails is the row's error."""
    evaluators = content.evaluators_of(row)
    plain = [e for e in evaluators if e.kind != "simulated"]
    checks: list[Check] = []
    spent: list[float | None] = []
    answered: Answered | None = None
    transcript: tuple[ChatMessage, ...] | None = None
    if plain:
        answered, conversation = await _answer(row, target, runner, bot_id, team_id)
        spent += answered.costs_usd
        if len(row.turns) > 1:
            transcript = conversation
        if answered.output.error:
            failed = Check("answer", "error", answered.output.error)
            return _result(row, target, answered, [failed], spent, transcript)
        for evaluator in plain:
            checks.append(
                await check(evaluator, row, answered, llm=runner.llm, judge_model=judge_model)
            )
    for evaluator in evaluators:
        if evaluator.kind != "simulated":
            continue
        simulation = await simulate(
            evaluator,
            row,
            runner=runner,
            bot=target.bot,
            judge_model=judge_model,
            bot_id=bot_id,
            team_id=team_id,
            version=target.number,
        )
        checks.append(simulation.check)
        if simulation.answered is not None:
            spent += simulation.answered.costs_usd
            if answered is None:  # the row's answer is the simulated conversation's last
                answered, transcript = simulation.answered, simulation.conversation
    return _result(row, target, answered, checks, spent, transcript)


async def _answer(
    row: DatasetRow,
    target: Target,
    runner: BotRunner,
    bot_id: int | None,
    team_id: int | None,
) -> tuple[Answered, tuple[ChatMessage, ...]]:
    """The row's turns in order after its history (a failed turn ends them), and the exchange."""
    session = EphemeralSession(turns=[ChatMessage(m.role, m.text) for m in row.history])
    latencies: list[float] = []
    costs: list[float | None] = []
    said: list[ChatMessage] = []
    output: TurnOutput | None = None
    for text in row.turns:
        started = time.perf_counter()
        output = await runner.run(
            target.bot,
            text=text,
            session=session,
            mode="eval",
            bot_id=bot_id,
            team_id=team_id,
            version=target.number,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        costs.append(output.usage.cost_usd)
        said += [ChatMessage("user", text), ChatMessage("assistant", output.reply)]
        if output.error:
            break
    assert output is not None  # a row has at least one turn
    return Answered(output, tuple(latencies), tuple(costs)), tuple(said)


def _result(
    row: DatasetRow,
    target: Target,
    answered: Answered | None,
    checks: list[Check],
    bot_costs: list[float | None],
    transcript: tuple[ChatMessage, ...] | None,
) -> RowResult:
    scores = [c.score for c in checks if c.score is not None]
    score = sum(scores) / len(scores) if scores else None
    outcome: Outcome = "error" if score is None else "pass" if score == 1.0 else "fail"
    costs = [*bot_costs, *(c.cost_usd for c in checks)]
    return RowResult(
        row_id=row.id,
        version=target.label,
        outcome=outcome,
        score=score,
        answer=clip(answered.output.reply, ANSWER_CHARS) if answered else "",
        latency_ms=round(max(answered.latencies_ms), 1) if answered else None,
        cost_usd=total(costs),
        known_cost_usd=sum(cost for cost in costs if cost is not None),
        checks=tuple(checks),
        transcript=transcript,
    )


def summarize(results: list[RowResult], labels: list[str]) -> list[VersionScore]:
    """Each version's score (error rows count 0), outcomes, median latency and cost."""
    scores: list[VersionScore] = []
    for label in labels:
        mine = [r for r in results if r.version == label]
        latencies = [r.latency_ms for r in mine if r.latency_ms is not None]
        scores.append(
            VersionScore(
                label=label,
                score=sum(r.score or 0.0 for r in mine) / len(mine) if mine else None,
                passed=sum(r.outcome == "pass" for r in mine),
                failed=sum(r.outcome == "fail" for r in mine),
                errors=sum(r.outcome == "error" for r in mine),
                p50_ms=round(statistics.median(latencies), 1) if latencies else None,
                cost_usd=sum(r.known_cost_usd for r in mine),
                unpriced=sum(r.cost_usd is None for r in mine),
            )
        )
    return scores
