"""A dataset's rows from a CSV file: a header row, then one row per input.

Columns: `input` (required: what the user says), `expected` (what the answer must do) and
`evaluator` (contains, regex, judge or step: how `expected` is checked; contains when it is
left empty). Blank lines are skipped; a row with fewer cells than the header has the rest
empty. Anything else wrong is one line naming the line of the file, and no row is kept: a file
is imported whole or not at all.
"""

from __future__ import annotations

import csv
import io

from builders.dataset import (
    MAX_ROWS,
    DatasetRow,
    Evaluator,
    EvaluatorKind,
    regex_error,
)
from builders.spec import MAX_TURN_CHARS

MAX_CSV_BYTES = 1024 * 1024
COLUMNS = ("input", "expected", "evaluator")
KINDS: tuple[EvaluatorKind, ...] = ("contains", "regex", "judge", "step")  # they check `expected`
_KINDS: dict[str, EvaluatorKind] = {kind: kind for kind in KINDS}
MAX_EXPECTED_CHARS = 2000
_DELIMITERS = (",", ";", "\t")


class CsvError(ValueError):
    """Why a CSV file cannot become a dataset, in one line."""


def rows_from_csv(data: bytes) -> list[DatasetRow]:
    """The rows of a CSV file (UTF-8, with or without a byte-order mark), numbered from 1."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvError(f"the file is over {MAX_CSV_BYTES // (1024 * 1024)} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(
            f"the file is not UTF-8 text (byte {exc.start + 1} cannot be read): save it as "
            "CSV UTF-8"
        ) from None
    if "\x00" in text:
        raise CsvError("the file holds a NUL character: it is no CSV text")
    if not text.strip():
        raise CsvError(_EMPTY)
    first = next(line for line in text.splitlines() if line.strip())
    # newline="": the reader sees each line ending as written (quoted values may hold some).
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    columns: dict[str, int] | None = None
    rows: list[DatasetRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if columns is None:
                columns = _columns(cells)
                continue
            if len(rows) == MAX_ROWS:
                raise CsvError(f"the file has over {MAX_ROWS:,} rows, the most a dataset holds")
            rows.append(_row(len(rows) + 1, reader.line_num, columns, cells))
    except csv.Error as exc:
        raise CsvError(f"line {reader.line_num}: {exc}") from None
    if columns is None:
        raise CsvError(_EMPTY)
    if not rows:
        raise CsvError("the file has a header but no rows")
    return rows


_EMPTY = "the file is empty: it needs a header row (input, and optionally expected, evaluator)"


def _delimiter(first_line: str) -> str:
    """A comma, unless the header holds none and uses semicolons or tabs (as spreadsheets set
    to some languages save CSV)."""
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    if counts[","]:
        return ","
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _columns(header: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in header]
    unknown = [name for name in names if name not in COLUMNS]
    if "input" not in names:
        raise CsvError(f"the CSV needs an input column; it has: {_shown(names)}")
    if unknown:
        raise CsvError(
            f"the CSV has columns it cannot use ({_shown(unknown)}); its columns may be "
            f"{', '.join(COLUMNS)}"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise CsvError(f"the CSV names the column {twice[0]} twice")
    return {name: index for index, name in enumerate(names)}


def _shown(names: list[str]) -> str:
    return ", ".join(name[:30] or "(empty)" for name in names[:10]) + (
        ", …" if len(names) > 10 else ""
    )


def _row(row_id: int, line: int, columns: dict[str, int], cells: list[str]) -> DatasetRow:
    if len(cells) > len(columns):
        raise CsvError(
            f"line {line} has {len(cells)} values but the header names {len(columns)} columns "
            "(put a value holding a comma in double quotes)"
        )

    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    said, expected, kind = cell("input"), cell("expected"), cell("evaluator").lower()
    if not said:
        raise CsvError(f"line {line}: the input is empty")
    if len(said) > MAX_TURN_CHARS:
        raise CsvError(f"line {line}: the input is over {MAX_TURN_CHARS:,} characters")
    if len(expected) > MAX_EXPECTED_CHARS:
        raise CsvError(f"line {line}: expected is over {MAX_EXPECTED_CHARS:,} characters")
    if kind and kind not in KINDS:
        raise CsvError(f"line {line}: the evaluator '{kind[:30]}' is none of {', '.join(KINDS)}")
    if kind and not expected:
        raise CsvError(f"line {line}: the evaluator {kind} needs an expected value to check")
    problem = regex_error(expected) if kind == "regex" else None
    if problem is not None:
        raise CsvError(f"line {line}: expected is {problem}")
    return DatasetRow(
        id=row_id,
        turns=[said],
        expected=expected or None,
        evaluators=[Evaluator(kind=_KINDS[kind or "contains"])] if expected else [],
        source=f"line {line}",
    )
