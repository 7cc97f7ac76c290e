"""Split a Document into overlapping chunks that follow its structure.

A chunk never spans two sections (pages, or the bodies of two headings). Within a section whole
paragraphs are packed together; a paragraph too long for one chunk is cut between sentences, a
sentence too long between words, and only a word too long is cut inside. Each chunk after the
first of its section starts with the end of the previous one (cut at a sentence or word start), so
a passage split across two chunks can still be found whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from runtime.knowledge.extract import Document

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Whitespace after sentence-ending punctuation (closing quote or bracket allowed), or a paragraph
# break: the places where a sentence starts.
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"'\u201d\u2019)\]]))\s+|\n\n")
_WORD_BREAK = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a source, small enough to embed, with where it came from; also what the
    vector store keeps (`position` is its index within the source)."""

    text: str
    source_name: str
    position: int
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class _Unit:
    """The smallest piece packed into chunks: a paragraph, or a sentence or word of a long one."""

    text: str
    separator: str  # what joins it to the text before it: "\n\n" starts a paragraph


def chunk(document: Document, *, max_chars: int = 1000, overlap_chars: int = 150) -> list[Chunk]:
    """The chunks of `document`, numbered 0..n-1 in reading order; the same input, the same output.

    Whitespace is normalised: runs collapse to one space, paragraphs are separated by a blank line.
    Headings are metadata (`Chunk.heading`), not part of the text. The overlap never pushes a chunk
    over `max_chars`: it shrinks (to nothing if need be) to leave room for the new text.
    """
    if max_chars < 1 or overlap_chars < 0:
        raise ValueError("chunking needs max_chars >= 1 and overlap_chars >= 0")
    located = [
        (section, text)
        for section in document.sections
        for text in _pack(_units(section.text, max_chars), max_chars, overlap_chars)
    ]
    return [
        Chunk(
            text=text,
            source_name=document.name,
            position=position,
            page=section.page,
            heading=section.heading,
        )
        for position, (section, text) in enumerate(located)
    ]


def _units(text: str, max_chars: int) -> Iterator[_Unit]:
    for raw in _PARAGRAPH_BREAK.split(text):
        paragraph = " ".join(raw.split())
        if not paragraph:
            continue
        pieces = [paragraph] if len(paragraph) <= max_chars else _pieces(paragraph, max_chars)
        yield _Unit(pieces[0], "\n\n")
        yield from (_Unit(piece, " ") for piece in pieces[1:])


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """Sentences; the words of a sentence over `max_chars`; slices of a word over it."""
    pieces: list[str] = []
    for sentence in _SENTENCE_BREAK.split(paragraph):
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        for word in sentence.split(" "):
            pieces += (word[start : start + max_chars] for start in range(0, len(word), max_chars))
    return pieces


def _pack(units: Iterator[_Unit], max_chars: int, overlap_chars: int) -> Iterator[str]:
    """Greedily fill chunks with units; each new chunk opens with the previous one's tail."""
    current = ""
    for unit in units:
        if not current:
            current = unit.text
        elif len(current) + len(unit.separator) + len(unit.text) <= max_chars:
            current += unit.separator + unit.text
        else:
            yield current
            room = max_chars - len(unit.separator) - len(unit.text)
            tail = _tail(current, min(overlap_chars, room))
            current = tail + unit.separator + unit.text if tail else unit.text
    if current:
        yield current


def _tail(text: str, budget: int) -> str:
    """The longest end of `text` within `budget` characters that starts a sentence, else a word."""
    if budget <= 0:
        return ""
    earliest = len(text) - budget
    for boundary in (_SENTENCE_BREAK, _WORD_BREAK):
        starts = [match.end() for match in boundary.finditer(text) if match.end() >= earliest]
        if starts:
            return text[starts[0] :]
    return ""
