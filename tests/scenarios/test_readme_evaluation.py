"""The README's "Evaluation, feedback and A/B tests" lines say what the Studio reads: each
`you>` command (and each one after a `·`) parses to the command the section means."""

from __future__ import annotations

import re

from studio.commands import (
    AbTestPromoteWinner,
    AbTestStart,
    AbTestStatus,
    AbTestStop,
    DatasetAdd,
    DatasetEvaluate,
    DatasetExpect,
    DatasetFromLast,
    DatasetFromTests,
    DatasetList,
    DatasetShow,
    EvalGateSet,
    EvalOnlineSet,
    EvalRun,
    EvalRuns,
    ReviewAdd,
    ReviewList,
)
from studio.grammar import parse
from tests.scenarios.test_readme import _fence

_LINE = re.compile(r"you> (?P<text>.+?)(?:\s{2,}\(.+\))?")


def _said() -> list[str]:
    lines = []
    for line in _fence("Evaluation, feedback and A/B tests", "text").splitlines():
        match = _LINE.fullmatch(line)
        assert match, line
        lines += [part.strip() for part in match["text"].split("·")]
    return lines


def test_every_line_parses_to_its_command() -> None:
    parsed = [parse(text, bots={"faq-bot"}) for text in _said()]
    kinds = [type(command) for command in parsed]
    assert kinds == [
        DatasetFromLast,
        DatasetEvaluate,
        DatasetExpect,
        DatasetAdd,
        DatasetShow,
        DatasetList,
        DatasetFromTests,
        EvalRun,
        EvalRuns,
        EvalRuns,
        EvalGateSet,
        EvalOnlineSet,
        ReviewList,
        ReviewAdd,
        AbTestStart,
        AbTestStatus,
        AbTestStop,
        AbTestPromoteWinner,
    ]
    run = parsed[7]
    assert isinstance(run, EvalRun)
    assert run.dataset == "golden" and run.versions == ["production", "staging", "draft"]
    gate = parsed[10]
    assert isinstance(gate, EvalGateSet) and gate.min_score == 80
    ab = parsed[14]
    assert isinstance(ab, AbTestStart) and (ab.a, ab.b, ab.percent) == (3, 4, 20)
