"""Split a Document into small chunks of whole sentences, under their heading path.

A chunk is a sentence or a few (`max_chars`, 200 by default): small, so that a question's
embedding meets the sentences that answer it rather than a page's average, while the store
gives the model each found chunk widened with its neighbours (`VectorStore.query`), so a
passage reads whole. A chunk never cuts a sentence: only a sentence longer than a whole chunk is
cut, between words (and only a word longer than that, inside). A chunk never spans two
sections; a section shorter than `min_chars` is merged with the sections after it on the same
page (the later headings become lines of the text), so a FAQ of one-line answers keeps each
question with its answer. Each chunk carries its section's heading path and page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

from runtime.knowledge.extract import Document, Section

MAX_CHARS = 200
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Where a sentence may end: its punctuation, closing quotes or brackets, then white space.
_SENTENCE_END = re.compile(r"[.!?…][\"'\u201d\u2019)\]]*\s+")
# A period after these ends no sentence ("e.g. the", "Sec. 5", "Dr. Who").
_ABBREVIATIONS_TEXT = """
    e.g i.e etc vs cf al fig figs sec no nos art para pp ch vol ed eds approx dr mr mrs ms st jr
    sr inc ltd co corp
"""
_ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
# Re-cutting chunks stored before (they opened with the end of the one before): how far back
# such an overlap may start, and how short it may be.
_MAX_OVERLAP_SEARCH = 500
_MIN_OVERLAP_CHARS = 20


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a source, small enough to embed, with where it came from; also what the
    vector store keeps (`position` is its index within the source; `paragraph`: it opens a
    paragraph, None where that is not known, in chunks stored before it was kept)."""

    text: str
    source_name: str
    position: int
    page: int | None = None
    heading: str | None = None
    paragraph: bool | None = None

    @property
    def embedded_text(self) -> str:
        """What is embedded and matched: the heading path gives a passage its context."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass(frozen=True, slots=True)
class _Unit:
    """What chunks are packed from: a sentence, or the piece of one too long for a chunk."""

    text: str
    opens_paragraph: bool


def sentences(text: str) -> list[str]:
    """The sentences of one paragraph (white space already collapsed)."""
    found: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        head = max(start, text.rfind(" ", start, end.start()) + 1)
        word = text[head : end.start()].lower().lstrip("\"'([{\u201c\u2018")
        following = text[end.end() : end.end() + 1]
        ends = end.group()[0] != "." or not (
            word in _ABBREVIATIONS
            or (len(word) == 1 and word.isalpha())  # an initial, "a." in a list
            or following.islower()
        )
        if ends:
            found.append(text[start : end.start() + len(end.group().rstrip())])
            start = end.end()
    if start < len(text):
        found.append(text[start:])
    return [sentence for sentence in found if sentence]


def chunk(document: Document, *, max_chars: int = MAX_CHARS, min_chars: int = 200) -> list[Chunk]:
    """The chunks of `document`, numbered 0..n-1 in reading order; the same input, the same
    output. White space is normalised: runs collapse to one space, paragraphs are separated by
    a blank line."""
    if max_chars < 1:
        raise ValueError("chunking needs max_chars >= 1")
    located = [
        (first, text, opens)
        for first, paragraphs in _groups(document.sections, min_chars)
        for text, opens in _pack(paragraphs, max_chars)
    ]
    return [
        Chunk(
            text=text,
            source_name=document.name,
            position=position,
            page=first.page,
            heading=first.heading,
            paragraph=opens,
        )
        for position, (first, text, opens) in enumerate(located)
    ]


def _groups(sections: Sequence[Section], min_chars: int) -> Iterator[tuple[Section, list[str]]]:
    """Sections as runs of paragraphs; short neighbours on one page are one run (until it is no
    longer short), each after the first under a line with its heading's last part. A section
    that is not short is a run of its own, under its own heading."""
    group: list[str] = []
    first: Section | None = None
    for section in sections:
        paragraphs = _paragraphs(section.text)
        if not paragraphs:
            continue
        merges = (
            first is not None
            and section.page == first.page
            and _size(group) < min_chars
            and _size(paragraphs) < min_chars
        )
        if first is not None and not merges:
            yield first, group
            first = None
        if first is None:
            first, group = section, paragraphs
            continue
        title = (section.heading or "").rpartition(" > ")[2]
        group = group + ([title] if title and section.heading != first.heading else []) + paragraphs
    if first is not None:
        yield first, group


def _paragraphs(text: str) -> list[str]:
    return [p for p in (" ".join(raw.split()) for raw in _PARAGRAPH_BREAK.split(text)) if p]


def _size(paragraphs: list[str]) -> int:
    return sum(len(p) + 2 for p in paragraphs)


def _units(paragraphs: list[str], max_chars: int) -> Iterator[_Unit]:
    for paragraph in paragraphs:
        opens = True
        for sentence in sentences(paragraph):
            for piece in cut(sentence, max_chars):
                yield _Unit(piece, opens)
                opens = False


def cut(sentence: str, max_chars: int) -> list[str]:
    """A sentence in pieces of at most `max_chars`: itself if it fits, else cut between words
    (and only a word longer than that, inside one)."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    piece = ""
    for word in sentence.split(" "):
        for part in (word[i : i + max_chars] for i in range(0, len(word), max_chars)):
            if piece and len(piece) + 1 + len(part) <= max_chars:
                piece += " " + part
                continue
            if piece:
                pieces.append(piece)
            piece = part
    return [*pieces, piece] if piece else pieces


def _pack(paragraphs: list[str], max_chars: int) -> Iterator[tuple[str, bool]]:
    """Greedily fill chunks with units: each chunk's text, and whether it opens a paragraph."""
    current: list[_Unit] = []
    for unit in _units(paragraphs, max_chars):
        if current and len(_joined([*current, unit])) > max_chars:
            yield _joined(current), current[0].opens_paragraph
            current = []
        current.append(unit)
    if current:
        yield _joined(current), current[0].opens_paragraph


def _joined(units: list[_Unit]) -> str:
    text = units[0].text
    for unit in units[1:]:
        text += ("\n\n" if unit.opens_paragraph else " ") + unit.text
    return text


def joined(chunks: Sequence[Chunk]) -> str:
    """The text of consecutive chunks, apart as their paragraphs are."""
    parts = [chunks[0].text] if chunks else []
    parts += (_continuation(before.text, chunk) for before, chunk in pairwise(chunks))
    return "".join(parts)


def sections_of(chunks: Sequence[Chunk]) -> tuple[Section, ...]:
    """The sections stored chunks were cut from, rebuilt for cutting them again: consecutive
    chunks of one page and heading are joined."""
    runs: list[list[Chunk]] = []
    for piece in sorted(chunks, key=lambda c: c.position):
        last = runs[-1][-1] if runs else None
        if last is not None and (last.page, last.heading) == (piece.page, piece.heading):
            runs[-1].append(piece)
        else:
            runs.append([piece])
    return tuple(Section(joined(run), run[0].page, run[0].heading) for run in runs)


def _continuation(before: str, chunk: Chunk) -> str:
    """What the chunk adds after the one before: its separator and text. A chunk stored before
    chunks were small (`paragraph` unknown) may open with the end of the one before (an overlap
    of up to 150 characters, starting at a word), which is left out."""
    if chunk.paragraph is not None:
        return ("\n\n" if chunk.paragraph else " ") + chunk.text
    earliest = max(0, len(before) - _MAX_OVERLAP_SEARCH)
    for start in range(earliest, len(before) - _MIN_OVERLAP_CHARS + 1):
        if (start == 0 or before[start - 1].isspace()) and chunk.text.startswith(before[start:]):
            return chunk.text[len(before) - start :]
    ends_sentence = before.rstrip()[-1:] in ".!?…:\"')]"
    return ("\n\n" if ends_sentence else " ") + chunk.text
