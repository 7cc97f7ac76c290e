"""Evaluators that score what a bot said to one dataset row: the checks tests use (contains,
regex, step), a judge's verdict on a rubric, and limits on the answers' time and cost.

The simulated user, which needs a conversation of its own, is `runtime.evaluation.simulated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from builders.dataset import DatasetRow, Evaluator
from runtime.evaluation.checks import Checked, Outcome, answered_by, contains, matches
from runtime.evaluation.judge import NO_JUDGE_MODEL, judge
from runtime.llm import LlmGateway
from runtime.pipeline import TurnOutput

UNKNOWN_PRICE = "the model's price is unknown"


@dataclass(frozen=True, slots=True)
class Check:
    """One evaluator's outcome on a row; `cost_usd` is what checking cost (a judge's calls),
    None when a price is unknown."""

    kind: str
    outcome: Outcome
    reason: str = ""
    cost_usd: float | None = 0.0

    @property
    def score(self) -> float | None:
        """1 for a pass, 0 for a fail, None for an error (it does not count)."""
        return None if self.outcome == "error" else float(self.outcome == "pass")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "outcome": self.outcome, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Answered:
    """What the bot said to a row: its last turn's output, and every turn's time and cost
    (None: the model's price is unknown)."""

    output: TurnOutput
    latencies_ms: tuple[float, ...]
    costs_usd: tuple[float | None, ...]


def expectation(evaluator: Evaluator, row: DatasetRow) -> str | None:
    """What a value-checking evaluator compares with: its own value, else the row's."""
    return evaluator.value if evaluator.value is not None else row.expected


async def check(
    evaluator: Evaluator,
    row: DatasetRow,
    answered: Answered,
    *,
    llm: LlmGateway,
    judge_model: str | None,
) -> Check:
    """Score `answered` with one evaluator (not `simulated`). Never raises for a model's
    failure: a judge that cannot be asked or gives no verdict is an error with its reason."""
    kind = evaluator.kind
    answer = answered.output.reply
    if kind == "latency":
        assert evaluator.max_ms is not None
        slowest = max(answered.latencies_ms)
        if slowest <= evaluator.max_ms:
            return Check(kind, "pass")
        return Check(kind, "fail", f"took {slowest:,.0f} ms (over {evaluator.max_ms:,g} ms)")
    if kind == "cost":
        assert evaluator.max_usd is not None
        if any(cost is None for cost in answered.costs_usd):
            return Check(kind, "error", UNKNOWN_PRICE)
        dearest = max(cost for cost in answered.costs_usd if cost is not None)
        if dearest <= evaluator.max_usd:
            return Check(kind, "pass")
        return Check(kind, "fail", f"cost ${dearest:.6f} (over ${evaluator.max_usd:g})")
    value = expectation(evaluator, row)
    if value is None:  # refused before a run starts (`DatasetContent.unscorable`)
        return Check(kind, "error", f"row {row.id} has no expectation for {kind}")
    if kind == "contains":
        return _of(kind, contains(value, answer))
    if kind == "regex":
        return _of(kind, await matches(value, answer))
    if kind == "step":
        return _of(kind, answered_by(value, answered.output))
    if kind != "judge":
        raise ValueError(f"not an answer's evaluator: {kind}")
    if judge_model is None:
        return Check(kind, "error", NO_JUDGE_MODEL)
    verdict = await judge(llm, judge_model, rubric=value, question=row.turns[-1], answer=answer)
    if verdict.score is None:
        return Check(kind, "error", verdict.reason, verdict.cost_usd)
    outcome: Outcome = "pass" if verdict.passed else "fail"
    return Check(kind, outcome, "" if verdict.passed else verdict.reason, verdict.cost_usd)


def _of(kind: str, checked: Checked) -> Check:
    return Check(kind, checked.outcome, checked.reason)


def total(costs: Sequence[float | None]) -> float | None:
    """The sum, or None when any part is unknown (an unknown cost is never shown as 0)."""
    if any(cost is None for cost in costs):
        return None
    return sum(cost for cost in costs if cost is not None)
