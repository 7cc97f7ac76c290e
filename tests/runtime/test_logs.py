"""Log lines carry the `extra` context the call sites pass, as text or as JSON."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from runtime.logs import JsonFormatter, TextFormatter, configure_logging


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "runtime.runtime", logging.WARNING, __file__, 1, "turn %s", ("x",), None
    )
    record.__dict__.update(extra)
    return record


def test_json_is_one_object_per_line_with_the_context() -> None:
    line = JsonFormatter().format(_record(bot="faq-bot", deployment="d_1", conversation="c_9"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "turn x" and entry["level"] == "WARNING"
    assert entry["logger"] == "runtime.runtime"
    assert (entry["bot"], entry["deployment"], entry["conversation"]) == ("faq-bot", "d_1", "c_9")
    assert entry["time"].endswith("+00:00")


def test_json_keeps_a_traceback_inside_the_object() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, True)
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_text_appends_the_context() -> None:
    line = TextFormatter().format(_record(inbox=42))
    assert line.endswith("runtime.runtime: turn x inbox=42")
    assert TextFormatter().format(_record()).endswith("turn x")
    assert TextFormatter().format(_record(color_message="\x1b[36mturn\x1b[0m")).endswith("turn x")


def test_configure_logging_json_reaches_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    try:
        configure_logging("json")
        logging.getLogger("studio.engine").warning("the Studio failed", extra={"bot": "b"})
    finally:
        root.handlers[:], level = before
        root.setLevel(level)
    entry = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert entry["message"] == "the Studio failed" and entry["bot"] == "b"
