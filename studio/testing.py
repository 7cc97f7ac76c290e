"""Running a bot's test cases against a draft: each case replays its turns in a fresh
conversation and checks the last answer (`contains`, `regex`, or a rubric graded by a judge model).

A case never raises for a model's failure: a provider error or a judge that gives no verdict is the
case's `error` outcome, with the real reason. A spec whose pipeline cannot be built raises
`CompileError` before any case runs. The checks and the judge are the ones evaluation runs use
(`runtime.evaluation`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from builders.spec import BotSpec, Expectation, TestCase
from runtime.evaluation.checks import Checked, answered_by, clip, contains, matches, quoted
from runtime.evaluation.judge import NO_JUDGE_MODEL, judge
from runtime.pipeline import CompiledBot, TurnOutput, compile_spec
from runtime.turn.runner import BotRunner
from runtime.turn.session import EphemeralSession
from studio.test_report import CaseResult, TestReport

logger = logging.getLogger(__name__)

__all__ = ["MAX_CONCURRENT_CASES", "NO_JUDGE_MODEL", "Progress", "run_cases"]

MAX_CONCURRENT_CASES = 4
_ANSWER_CHARS = 2_000  # what a result keeps of the bot's answer

Progress = Callable[[int, int], Awaitable[None]]


async def run_cases(
    spec: BotSpec,
    *,
    runner: BotRunner,
    judge_model: str | None,
    progress: Progress | None = None,
    bot_id: int | None = None,
    team_id: int | None = None,
) -> TestReport:
    """Run every case of `spec` (at most `MAX_CONCURRENT_CASES` at once), results in case order.

    `progress(done, total)` is awaited after each case, in increasing order of `done`; a progress
    reporter that raises is logged and does not stop the run. A bug in a step is that case's
    error (the turn engine's error boundary, as for live traffic); any other exception cancels
    the remaining cases and propagates.
    """
    bot = compile_spec(spec)
    total = len(spec.tests)
    limit = asyncio.Semaphore(MAX_CONCURRENT_CASES)
    reporting = asyncio.Lock()
    done = 0

    async def one(number: int, case: TestCase) -> CaseResult:
        nonlocal done
        async with limit:
            result = await _run_case(
                bot, number, case, runner=runner, judge_model=judge_model, ids=(bot_id, team_id)
            )
        if progress is not None:
            async with reporting:  # one report at a time, so `done` arrives in order
                done += 1
                try:
                    await progress(done, total)
                except Exception:
                    logger.exception("test progress reporter failed", extra={"bot": spec.name})
        return result

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(n, c)) for n, c in enumerate(spec.tests, start=1)]
    except ExceptionGroup as crashed:
        # A bug, not a model's failure: the other cases are cancelled and the caller gets the
        # first error itself (a useful reason for a failed run), not the group around it.
        raise crashed.exceptions[0] from None
    return TestReport(
        bot=spec.name,
        spec_hash=spec.content_hash(),
        results=tuple(task.result() for task in tasks),
    )


async def _run_case(
    bot: CompiledBot,
    number: int,
    case: TestCase,
    *,
    runner: BotRunner,
    judge_model: str | None,
    ids: tuple[int | None, int | None],
) -> CaseResult:
    """The case's turns in a conversation of its own (history and memory kept in memory, as a
    live conversation would keep them), then its expectations checked on the last answer."""
    session = EphemeralSession()
    output: TurnOutput | None = None
    for text in case.turns:
        output = await runner.run(
            bot, text=text, session=session, mode="test", bot_id=ids[0], team_id=ids[1]
        )
        if output.error:
            return _result(number, case, output.reply, Checked("error", output.error))
    assert output is not None  # a case has at least one turn
    answer = output.reply
    for wanted in sorted(case.steps_named()):
        checked = answered_by(wanted, output)
        if checked.outcome != "pass":
            return _result(number, case, answer, checked)
    expect = case.expect
    if expect.kind == "step":
        return _result(number, case, answer, Checked("pass"))
    if expect.kind == "contains":
        return _result(number, case, answer, contains(expect.value, answer))
    if expect.kind == "regex":
        return _result(number, case, answer, await matches(expect.value, answer))
    if judge_model is None:
        return _result(number, case, answer, Checked("error", NO_JUDGE_MODEL))
    verdict = await judge(
        runner.llm, judge_model, rubric=expect.value, question=case.turns[-1], answer=answer
    )
    if verdict.score is None:
        return _result(number, case, answer, Checked("error", verdict.reason))
    if verdict.passed:
        return _result(number, case, answer, Checked("pass"))
    return _result(number, case, answer, Checked("fail", verdict.reason))


def _result(number: int, case: TestCase, answer: str, checked: Checked) -> CaseResult:
    return CaseResult(
        number=number,
        input=case.turns[-1],
        expect=f"{case.expect.kind} {_quoted(case.expect)}"
        + (f" from step '{case.step}'" if case.step else ""),
        outcome=checked.outcome,
        answer=clip(answer, _ANSWER_CHARS),
        reason=checked.reason,
    )


def _quoted(expect: Expectation) -> str:
    return quoted(expect.value)
