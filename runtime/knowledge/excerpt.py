"""The few sentences of the best passage that answer a question: the `offline` model's answer,
which quotes them rather than a whole passage.

A passage is a found chunk widened with its neighbours. Each of its sentences is scored by the
question's keyword terms it holds, rarer terms (among the passage's sentences) counting more,
and the sentences of the chunk that was found count extra, since the search chose it. The best
sentence is quoted with the next ones while the quote is short or ends in a colon. Without any
term in common (a question matched by meaning only), the found chunk is quoted.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from runtime.knowledge.chunking import sentences
from runtime.knowledge.terms import terms

MAX_QUOTE_CHARS = 400
_CONTINUE_BELOW = 250  # a quote shorter than this goes on with the next sentence
_FOUND_BONUS = 1.0  # added to a sentence of the chunk that was found (in units of rarity)


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    terms: frozenset[str]
    found: bool


def excerpt(text: str, question: str, *, focus: str | None = None) -> str:
    """The quote from passage `text` that best answers `question`; `focus` is the part of
    the text the search found."""
    within = focus if focus and focus in text else None
    start = text.find(within) if within else -1
    split: list[_Sentence] = []
    offset = 0
    for paragraph in text.split("\n\n"):
        for sentence in sentences(paragraph):
            at = text.find(sentence, offset)
            offset = max(offset, at)
            found = within is not None and start <= at < start + len(within)
            split.append(_Sentence(sentence, frozenset(terms(sentence)), found))
    if not split:
        return text
    asked = set(terms(question))
    counts: Counter[str] = Counter(term for s in split for term in s.terms & asked)
    rarity = {term: math.log(1 + len(split) / count) for term, count in counts.items()}
    if not rarity:
        return within or _quote(split, 0)
    scores = [
        sum(rarity.get(term, 0.0) for term in s.terms) + (_FOUND_BONUS if s.found else 0.0)
        for s in split
    ]
    best = max(range(len(split)), key=lambda i: (scores[i], split[i].found, -i))
    return _quote(split, best)


def _quote(split: list[_Sentence], start: int) -> str:
    """The sentence at `start` and those after it while the quote stays within bounds."""
    quote = split[start].text
    for sentence in split[start + 1 :]:
        goes_on = len(quote) < _CONTINUE_BELOW or quote.endswith(":")
        if not goes_on or len(quote) + 1 + len(sentence.text) > MAX_QUOTE_CHARS:
            break
        quote += " " + sentence.text
    return quote
