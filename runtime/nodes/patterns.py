"""Matching a person's text: builders' regular expressions (compiled at save, searched with a time
limit) and whole words or phrases (case-insensitive, fast: a literal search, then the edges)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

# A builder's pattern runs on the event loop: a backtracking one (`(a+)+$`) must stop soon.
REGEX_TIMEOUT_S = 0.05
MAX_PATTERN_CHARS = 1000


class PatternTimeoutError(Exception):
    """A builder's regular expression took longer than `REGEX_TIMEOUT_S` on a text."""


def compile_pattern(text: str) -> regex.Pattern[str]:
    """The pattern, or `ValueError` with a one-line reason."""
    try:
        return regex.compile(text)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None


def search(pattern: regex.Pattern[str], text: str) -> regex.Match[str] | None:
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT_S)
    except TimeoutError:
        raise PatternTimeoutError(
            f"the pattern {pattern.pattern[:60]!r} took over {REGEX_TIMEOUT_S:g} s; simplify it"
        ) from None


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


@dataclass(frozen=True, slots=True)
class Phrase:
    """Whole words or a phrase, matched in text already casefolded (`str.casefold`): "money
    back" is found in "I want my Money  back!" but "refund" is not found in "refunded"."""

    text: str
    pattern: re.Pattern[str]
    word_start: bool  # the phrase starts with a word character: the one before must not be

    @classmethod
    def of(cls, phrase: str) -> Phrase:
        words = phrase.casefold().split()
        body = r"\s+".join(re.escape(word) for word in words)
        if _is_word(words[-1][-1]):
            body += r"(?!\w)"  # after a literal start, so the search stays a fast literal scan
        return cls(text=phrase, pattern=re.compile(body), word_start=_is_word(words[0][0]))

    def found(self, folded: str) -> bool:
        position = 0
        while (match := self.pattern.search(folded, position)) is not None:
            start = match.start()
            if not self.word_start or start == 0 or not _is_word(folded[start - 1]):
                return True
            position = start + 1
        return False
