"""The checks a test case and an evaluation share: does an answer contain a text, match a
pattern, come from a step. Each gives an outcome and, unless it passed, the reason in words.

A pattern is searched with a time limit, off the event loop: a pattern such as `(a+)+$`
backtracks for hours on the wrong answer, and `re` can neither stop nor release the GIL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

import regex

from runtime.evaluation.judge import CHECKED_CHARS
from runtime.pipeline import TurnOutput

Outcome = Literal["pass", "fail", "error"]
REGEX_TIMEOUT_S = 0.5
LABEL_CHARS = 60  # of a value quoted in a reason


@dataclass(frozen=True, slots=True)
class Checked:
    """One check's outcome; `reason` says why it failed or errored (empty when it passed)."""

    outcome: Outcome
    reason: str = ""


PASSED = Checked("pass")


def clip(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending with … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(value: str) -> str:
    return f"'{clip(value, LABEL_CHARS)}'"


def contains(value: str, answer: str) -> Checked:
    """The answer holds `value`, in any case."""
    if value.casefold() in answer.casefold():
        return PASSED
    return Checked("fail", f"expected it to contain {quoted(value)}")


async def matches(pattern: str, answer: str) -> Checked:
    """The pattern is found in the answer (its first `CHECKED_CHARS`), within the time limit."""
    try:
        found = await asyncio.to_thread(
            regex.search, pattern, answer[:CHECKED_CHARS], timeout=REGEX_TIMEOUT_S, concurrent=True
        )
    except TimeoutError:
        why = f"the regex {quoted(pattern)} took over {REGEX_TIMEOUT_S:g} s; simplify it"
        return Checked("error", why)
    except regex.error as exc:  # valid for `re` (the spec's check), not for `regex`
        return Checked("error", f"the regex does not compile: {exc}")
    if found is not None:
        return PASSED
    return Checked("fail", f"expected a match for {quoted(pattern)}")


def answered_by(step: str, output: TurnOutput) -> Checked:
    """Step `step` gave the answer."""
    if output.step == step:
        return PASSED
    answered = (
        f"step '{output.step}' did"
        if output.step
        else f"the {output.blocked} guard did"
        if output.blocked
        else "the fallback did"
    )
    path = " → ".join(output.path)
    why = f"expected step '{step}' to answer; {answered}" + (f" (path: {path})" if path else "")
    return Checked("fail", why)
