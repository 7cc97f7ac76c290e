"""Datasets as values (`builders.dataset`): rows of the draft's tests, names made of file
names, regular expressions taken from rows, and what a content must hold."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from builders.dataset import (
    DATASET_NAME,
    DatasetContent,
    DatasetRow,
    Evaluator,
    name_from,
    regex_problems,
    rows_from_tests,
)
from builders.spec import Expectation, TestCase


def test_each_test_case_becomes_a_row_checked_as_the_test_checks() -> None:
    tests = [
        TestCase(turns=["hi"], expect=Expectation(kind="contains", value="Hello")),
        TestCase(
            turns=["I want a refund", "order 12"],
            expect=Expectation(kind="regex", value=r"refund(ed)?"),
            step="refunds",
        ),
        TestCase(turns=["route me"], expect=Expectation(kind="step", value="sales")),
    ]
    rows = rows_from_tests(tests)
    assert [row.id for row in rows] == [1, 2, 3]
    assert rows[1].turns == ["I want a refund", "order 12"]
    assert [row.expected for row in rows] == ["Hello", r"refund(ed)?", "sales"]
    assert [row.evaluators for row in rows] == [
        [Evaluator(kind="contains")],
        [Evaluator(kind="regex"), Evaluator(kind="step", value="refunds")],
        [Evaluator(kind="step")],
    ]
    assert [row.source for row in rows] == ["test 1", "test 2", "test 3"]
    content = DatasetContent(rows=rows)
    assert content.unscorable() == [] and regex_problems(content) == []


@pytest.mark.parametrize(
    ("stem", "name"),
    [
        ("golden", "golden"),
        ("Golden Set (v2)", "golden-set-v2"),
        ("Café Questions", "cafe-questions"),
        ("__faq__", "faq"),
        ("data.2026", "data-2026"),
        ("x" * 60, "x" * 40),
        ("a" * 39 + "-b", "a" * 39),
        ("!!!", None),
        ("日本語", None),
    ],
)
def test_a_file_name_becomes_a_dataset_name(stem: str, name: str | None) -> None:
    made = name_from(stem)
    assert made == name
    assert made is None or re.fullmatch(DATASET_NAME, made)


def test_expectations_read_as_regular_expressions_must_compile() -> None:
    rows = [
        DatasetRow(id=1, turns=["a"], expected="(unclosed"),
        DatasetRow(id=2, turns=["b"], expected="fine|good"),
        DatasetRow(id=3, turns=["c"], expected="[", evaluators=[Evaluator(kind="contains")]),
    ]
    # no evaluator reads them as patterns: nothing to say
    assert regex_problems(DatasetContent(rows=rows)) == []
    checked = DatasetContent(evaluators=[Evaluator(kind="regex")], rows=rows)
    problems = regex_problems(checked)
    assert [p.split("'")[0] for p in problems] == ["row 1", "row 3"]
    assert problems[0].startswith("row 1's expectation is not a valid regular expression")
    # a regex with its own value reads no row's expectation
    own = DatasetContent(evaluators=[Evaluator(kind="regex", value="ok")], rows=rows)
    assert regex_problems(own) == []


def test_a_content_is_checked_whole() -> None:
    with pytest.raises(ValidationError, match="row ids must be unique"):
        DatasetContent(rows=[DatasetRow(id=1, turns=["a"]), DatasetRow(id=1, turns=["b"])])
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        Evaluator(kind="regex", value="(")
    with pytest.raises(ValidationError, match="latency evaluator needs max_ms"):
        Evaluator(kind="latency")
    same = [DatasetRow(id=1, turns=["a"], expected="b")]
    assert DatasetContent(rows=same).content_hash() == DatasetContent(rows=same).content_hash()
    assert (
        DatasetContent(rows=same).content_hash()
        != DatasetContent(rows=same, evaluators=[Evaluator(kind="contains")]).content_hash()
    )
