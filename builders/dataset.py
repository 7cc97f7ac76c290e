"""Datasets: rows of inputs (with the conversation before them) and what their answers must do,
scored by evaluators when versions of a bot are compared (`/eval`).

An evaluator is named by the dataset (it scores every row) or by a row (that row only). The kinds
`contains`, `regex`, `judge` (a rubric) and `step` need a value: the evaluator's own, or else the
row's `expected`. `latency` and `cost` need a limit; `simulated` has a model play a described
person for a few turns and the judge grade the whole conversation with its rubric.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from builders.spec import MAX_TURN_CHARS, MAX_TURNS, TestCase

MAX_ROWS = 1000
MAX_EVALUATORS = 8  # of a dataset; a row may name up to 4 of its own
MAX_SIMULATED_TURNS = 10
MAX_HISTORY = 40  # messages of context before a row's turns
DATASET_NAME = r"^[a-z0-9][a-z0-9-]{0,39}$"
DatasetName = Annotated[str, StringConstraints(pattern=DATASET_NAME)]
EvaluatorKind = Literal["contains", "regex", "judge", "step", "latency", "cost", "simulated"]
# The kinds that check a value: the evaluator's, or else the row's `expected`.
NEEDS_VALUE: frozenset[str] = frozenset({"contains", "regex", "judge", "step"})
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TURN_CHARS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evaluator(_Model):
    """One way of scoring an answer (a row's last answer, or a simulated conversation)."""

    kind: EvaluatorKind
    value: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    max_ms: Annotated[float, Field(gt=0, le=600_000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    max_usd: Annotated[float, Field(gt=0, le=100)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    persona: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    turns: Annotated[int, Field(ge=1, le=MAX_SIMULATED_TURNS)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )

    @model_validator(mode="after")
    def _complete(self) -> Evaluator:
        kind = self.kind
        if kind == "latency" and self.max_ms is None:
            raise ValueError("a latency evaluator needs max_ms (the slowest answer that passes)")
        if kind == "cost" and self.max_usd is None:
            raise ValueError("a cost evaluator needs max_usd (the dearest answer that passes)")
        if kind == "simulated" and (self.persona is None or self.value is None):
            raise ValueError(
                "a simulated-user evaluator needs a persona (who the user is) and a value (the "
                "rubric the whole conversation is graded by)"
            )
        if self.max_ms is not None and kind != "latency":
            raise ValueError("max_ms is for latency evaluators only")
        if self.max_usd is not None and kind != "cost":
            raise ValueError("max_usd is for cost evaluators only")
        if (self.persona is not None or self.turns is not None) and kind != "simulated":
            raise ValueError("persona and turns are for simulated-user evaluators only")
        if kind == "regex" and self.value is not None:
            _check_regex(self.value)
        return self

    @property
    def needs_value(self) -> bool:
        """It checks the row's `expected`: it has no value of its own."""
        return self.kind in NEEDS_VALUE and self.value is None


class HistoryMessage(_Model):
    """A message of the conversation before a row's turns, as it was said."""

    role: Literal["user", "assistant"]
    text: Annotated[str, StringConstraints(max_length=20_000)]


class DatasetRow(_Model):
    """One input to score: `turns` are sent in order after `history`, and the last answer is
    checked (a simulated-user evaluator starts from the first turn instead)."""

    id: Annotated[int, Field(ge=1, le=1_000_000)]
    turns: Annotated[list[Text], Field(min_length=1, max_length=MAX_TURNS)]
    history: Annotated[list[HistoryMessage], Field(max_length=MAX_HISTORY)] = Field(
        default_factory=list, exclude_if=lambda value: not value
    )
    expected: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )
    evaluators: Annotated[list[Evaluator], Field(max_length=4)] = Field(
        default_factory=list, exclude_if=lambda value: not value
    )
    reference: Annotated[str, StringConstraints(max_length=20_000)] | None = Field(
        default=None, exclude_if=lambda value: value is None
    )  # the answer given when the row was collected (production's, say)
    source: Annotated[str, StringConstraints(max_length=200)] = ""


class DatasetContent(_Model):
    """A dataset's rows and the evaluators that score every row."""

    evaluators: Annotated[list[Evaluator], Field(max_length=MAX_EVALUATORS)] = Field(
        default_factory=list
    )
    rows: Annotated[list[DatasetRow], Field(min_length=1, max_length=MAX_ROWS)]

    @model_validator(mode="after")
    def _unique_rows(self) -> DatasetContent:
        seen: set[int] = set()
        for row in self.rows:
            if row.id in seen:
                raise ValueError(f"row ids must be unique: {row.id} is used twice")
            seen.add(row.id)
        return self

    def content_hash(self) -> str:
        """A stable hash of the content: equal datasets have equal hashes."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def next_row_id(self) -> int:
        return max(row.id for row in self.rows) + 1

    def row(self, row_id: int) -> DatasetRow | None:
        return next((row for row in self.rows if row.id == row_id), None)

    def evaluators_of(self, row: DatasetRow) -> list[Evaluator]:
        """What scores `row`: its own evaluators, then the dataset's."""
        return [*row.evaluators, *self.evaluators]

    def unscorable(self) -> list[str]:
        """Why rows cannot be scored as they are, one line each (empty: all can): a row with no
        evaluator at all, or one whose evaluator needs the row's expectation and it has none."""
        problems: list[str] = []
        for row in self.rows:
            evaluators = self.evaluators_of(row)
            if not evaluators:
                problems.append(f"row {row.id} has nothing to check it with")
                continue
            needing = sorted({e.kind for e in evaluators if e.needs_value})
            if needing and row.expected is None:
                problems.append(
                    f"row {row.id} has no expectation, and {' and '.join(needing)} needs one"
                )
        return problems


def regex_problems(content: DatasetContent) -> list[str]:
    """Rows whose expectation a regex evaluator would read but which is no regular expression,
    one line each (empty: none)."""
    problems: list[str] = []
    for row in content.rows:
        uses = any(e.kind == "regex" and e.needs_value for e in content.evaluators_of(row))
        problem = regex_error(row.expected) if uses and row.expected is not None else None
        if problem is not None:
            problems.append(f"row {row.id}'s expectation is {problem}")
    return problems


def regex_error(pattern: str) -> str | None:
    """Why `pattern` is no regular expression ("not a valid regular expression (…)"), or None."""
    try:
        _check_regex(pattern)
    except ValueError as exc:
        return str(exc)
    return None


_NOT_IN_NAME = re.compile(r"[^a-z0-9]+")


def name_from(text: str) -> str | None:
    """A dataset name made of `text` (a file's stem): lower-case ASCII (accents dropped), each run
    of other characters one '-', at most 40 characters; None when no letter or digit is left."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    name = _NOT_IN_NAME.sub("-", plain).strip("-")[:40].rstrip("-")
    return name or None


def rows_from_tests(tests: list[TestCase]) -> list[DatasetRow]:
    """A row per test case: its turns, its expectation as the row's, checked by an evaluator of
    the expectation's kind (and a `step` evaluator when the case names the step that answers)."""
    rows: list[DatasetRow] = []
    for number, case in enumerate(tests, start=1):
        evaluators = [Evaluator(kind=case.expect.kind)]
        if case.step is not None:
            evaluators.append(Evaluator(kind="step", value=case.step))
        rows.append(
            DatasetRow(
                id=number,
                turns=list(case.turns),
                expected=case.expect.value,
                evaluators=evaluators,
                source=f"test {number}",
            )
        )
    return rows


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
