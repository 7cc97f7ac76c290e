"""A dataset's rows from a CSV file (`builders.dataset_csv`): what a spreadsheet saves is read,
and anything wrong is one line naming the line, with no row kept."""

from __future__ import annotations

import pytest

from builders.dataset import MAX_ROWS, DatasetContent, DatasetRow, Evaluator
from builders.dataset_csv import MAX_CSV_BYTES, CsvError, rows_from_csv


def _kinds(row: DatasetRow) -> list[str]:
    return [evaluator.kind for evaluator in row.evaluators]


def test_rows_are_read_with_their_expectations_and_evaluators() -> None:
    data = (
        b"input,expected,evaluator\n"
        b"How do I get a refund?,30 days,\n"
        b'"Hi, who are you?",^I am,regex\n'
        b"Tell me a joke,,\n"
        b'Be rude,"Politely declines, stays kind",judge\n'
    )
    rows = rows_from_csv(data)
    assert [row.id for row in rows] == [1, 2, 3, 4]
    assert [row.turns for row in rows] == [
        ["How do I get a refund?"],
        ["Hi, who are you?"],
        ["Tell me a joke"],
        ["Be rude"],
    ]
    assert [row.expected for row in rows] == [
        "30 days",
        "^I am",
        None,
        "Politely declines, stays kind",
    ]
    assert [_kinds(row) for row in rows] == [["contains"], ["regex"], [], ["judge"]]
    assert [row.source for row in rows] == ["line 2", "line 3", "line 4", "line 5"]
    assert DatasetContent(rows=rows).unscorable() == ["row 3 has nothing to check it with"]


def test_what_spreadsheets_save_is_read() -> None:
    excel = "\ufeffInput;Expected\r\n\r\nhello;hi\r\nbye;\r\n".encode()  # BOM, `;`, CRLF
    rows = rows_from_csv(excel)
    assert [(row.turns, row.expected) for row in rows] == [(["hello"], "hi"), (["bye"], None)]
    tabbed = rows_from_csv(b"input\texpected\nhello\thi\n")
    assert tabbed[0].expected == "hi"
    multiline = rows_from_csv(b'input,expected\n"line one\nline two",two\n\nnext,\n')
    assert multiline[0].turns == ["line one\nline two"]
    assert [row.source for row in multiline] == ["line 3", "line 5"]
    short = rows_from_csv(b"expected,input\nhi,hello\n,bye\n")  # any column order
    assert [(row.turns[0], row.expected) for row in short] == [("hello", "hi"), ("bye", None)]
    one_column = rows_from_csv(b"input\nhello\n")
    assert one_column[0].evaluators == [] and one_column[0].expected is None
    fewer_cells = rows_from_csv(b"input,expected,evaluator\nhello\n")
    assert fewer_cells[0].expected is None


def test_the_most_rows_a_dataset_holds_are_read() -> None:
    data = ("input\n" + "".join(f"q{n}\n" for n in range(MAX_ROWS))).encode()
    assert len(rows_from_csv(data)) == MAX_ROWS


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "the file is empty: it needs a header row"),
        (b" \n\r\n\t\n", "the file is empty"),
        (b",,\n,,\n", "the file is empty"),
        (b"input,expected\n", "the file has a header but no rows"),
        (b"q,a\nhello,hi\n", "the CSV needs an input column; it has: q, a"),
        (b"input,answer\nhello,hi\n", "the CSV has columns it cannot use (answer); its columns "),
        (b"input,,expected\nhello,,hi\n", "columns it cannot use ((empty))"),
        (b"input,Input\nhello,hi\n", "the CSV names the column input twice"),
        ("input\ncaf\u00e9\n".encode("latin-1"), "the file is not UTF-8 text (byte 10"),
        (b"input\nhel\x00lo\n", "NUL character"),
        (b"input,expected\n  ,hi\n", "line 2: the input is empty"),
        (b"input,expected,evaluator\nhi,x,fuzzy\n", "line 2: the evaluator 'fuzzy' is none of"),
        (b"input,evaluator\nhi,regex\n", "line 2: the evaluator regex needs an expected value"),
        (b"input,evaluator\nhi,latency\n", "the evaluator 'latency' is none of contains"),
        (
            b"input,expected,evaluator\nok,fine,\nhi,(unclosed,regex\n",
            "line 3: expected is not a valid regular expression (missing ), unterminated",
        ),
        (b"input\nhello,there\n", "line 2 has 2 values but the header names 1 columns"),
        (b'input\n"unclosed\n', "line 2: unexpected end of data"),
        (b'input\n"a"b\n', "line 2: ',' expected after '\"'"),
        (b"input\n" + b"x" * 4001 + b"\n", "line 2: the input is over 4,000 characters"),
        (b"input,expected\nhi," + b"x" * 2001 + b"\n", "line 2: expected is over 2,000"),
        (
            ("input\n" + "q\n" * (MAX_ROWS + 1)).encode(),
            f"the file has over {MAX_ROWS:,} rows, the most a dataset holds",
        ),
        (b"input\n" + b"q" * MAX_CSV_BYTES, "the file is over 1 MB"),
    ],
)
def test_a_bad_file_is_one_line_and_no_rows(data: bytes, says: str) -> None:
    with pytest.raises(CsvError) as raised:
        rows_from_csv(data)
    said = str(raised.value)
    assert says in said
    assert "\n" not in said


def test_a_regex_evaluator_is_kept_for_rows_checked_by_it() -> None:
    rows = rows_from_csv(b"input,expected,evaluator\nhi,^h(ello|i)$,REGEX\n")
    assert rows[0].evaluators == [Evaluator(kind="regex")]
