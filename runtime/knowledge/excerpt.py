"""The few sentences of the best passage that answer a question: the `offline` model's answer,
which quotes them rather than a whole passage.

A passage is a found chunk widened with its neighbours. Each of its sentences (one longer than
a quote in pieces that fit) is scored by the question's keyword terms it holds, rarer terms
(among the passage's sentences) counting more, and the sentences of the chunk that was found
count extra, since the search chose it. The words of the source's name (`title_terms`: "the
MPL") hold for every sentence of it, so they pick none over another. The best sentence is
quoted after the one before it in its paragraph (which it may lean on: "This defaults to 2
seconds.") and with the next ones, while the quote stays within `MAX_QUOTE_CHARS`. Without any
term in common (a question matched by meaning only), that is the found chunk.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from runtime.knowledge.chunking import cut, sentences
from runtime.knowledge.terms import term_index, terms, title_terms

MAX_QUOTE_CHARS = 400
_FOUND_BONUS = 1.0  # added to a sentence of the chunk that was found (in units of rarity)


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    terms: frozenset[int]  # its terms' indices and its source's title terms
    found: bool
    paragraph: int


def excerpt(text: str, question: str, *, focus: str | None = None, source_name: str = "") -> str:
    """The quote from passage `text` (of the source `source_name`) that best answers
    `question`; `focus` is the part of the text the search found."""
    split = _sentences(text, focus, title_terms(source_name))
    if not split:
        return text
    asked = {term_index(term) for term in terms(question)}
    counts: Counter[int] = Counter(term for s in split for term in s.terms & asked)
    rarity = {term: math.log(1 + len(split) / count) for term, count in counts.items()}
    scores = [
        sum(rarity.get(term, 0.0) for term in s.terms) + (_FOUND_BONUS if s.found else 0.0)
        for s in split
    ]
    best = max(range(len(split)), key=lambda i: (scores[i], -i))
    return _quote(split, best)


def _sentences(text: str, focus: str | None, title: frozenset[int]) -> list[_Sentence]:
    """The sentences of a passage (in pieces that fit a quote), each marked if it is in the
    chunk that was found."""
    within = focus if focus and focus in text else None
    start = text.find(within) if within else -1
    split: list[_Sentence] = []
    offset = 0
    for paragraph, paragraph_text in enumerate(text.split("\n\n")):
        for sentence in sentences(paragraph_text):
            for piece in cut(sentence, MAX_QUOTE_CHARS):
                at = text.find(piece, offset)
                offset = max(offset, at)
                found = within is not None and start <= at < start + len(within)
                held = frozenset(term_index(term) for term in terms(piece)) | title
                split.append(_Sentence(piece, held, found, paragraph))
    return split


def _quote(split: list[_Sentence], best: int) -> str:
    """The sentence at `best`, after the one before it in its paragraph and with the next
    ones, while the quote stays within `MAX_QUOTE_CHARS`."""
    chosen = split[best]
    quote = chosen.text
    before = split[best - 1] if best > 0 else None
    if (
        before is not None
        and before.paragraph == chosen.paragraph
        and len(before.text) + 1 + len(quote) <= MAX_QUOTE_CHARS
    ):
        quote = f"{before.text} {quote}"
    for sentence in split[best + 1 :]:
        if len(quote) + 1 + len(sentence.text) > MAX_QUOTE_CHARS:
            break
        quote += " " + sentence.text
    return quote
