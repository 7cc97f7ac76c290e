"""Chunking follows the document's structure, overlaps within a section and is deterministic."""

from __future__ import annotations

from itertools import pairwise

import pytest

from runtime.knowledge.chunking import Chunk, chunk
from runtime.knowledge.extract import Document, Section


def doc(*sections: Section) -> Document:
    return Document(name="policy.pdf", kind="pdf", sections=sections)


def sentences(count: int, start: int = 0) -> str:
    return " ".join(f"Rule number {n} applies to every order." for n in range(start, start + count))


def overlap_of(previous: str, current: str) -> str:
    """The longest end of `previous` that `current` starts with."""
    return next(
        (previous[i:] for i in range(len(previous)) if current.startswith(previous[i:])), ""
    )


def test_short_sections_are_never_merged_and_carry_page_and_heading() -> None:
    chunks = chunk(
        doc(
            Section(text="Refunds take 14 days.", page=1, heading="Refunds"),
            Section(text="Shipping takes 3 days.", page=2, heading="Shipping"),
        )
    )
    assert chunks == [
        Chunk("Refunds take 14 days.", "policy.pdf", 0, 1, "Refunds"),
        Chunk("Shipping takes 3 days.", "policy.pdf", 1, 2, "Shipping"),
    ]


def test_whole_paragraphs_are_packed_and_whitespace_normalised() -> None:
    text = "First   paragraph\nwraps here.\n\n\n  Second\tone.  \n \nThird."
    [only] = chunk(doc(Section(text=text)), max_chars=100)
    assert only.text == "First paragraph wraps here.\n\nSecond one.\n\nThird."


def test_a_paragraph_that_does_not_fit_starts_the_next_chunk_whole() -> None:
    first, second, third = "A" * 40 + ".", "Bee " * 9 + "end.", "Cee sea."
    chunks = chunk(
        doc(Section(text=f"{first}\n\n{second}\n\n{third}")), max_chars=60, overlap_chars=0
    )
    assert [c.text for c in chunks] == [first, f"{second}\n\n{third}"]


def test_a_long_paragraph_is_split_at_sentences_within_the_limit() -> None:
    text = sentences(40)
    chunks = chunk(doc(Section(text=text, page=3)), max_chars=200, overlap_chars=0)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.startswith("Rule number") and c.text.endswith("order.") for c in chunks)
    assert " ".join(c.text for c in chunks) == text
    assert {c.page for c in chunks} == {3}


def test_a_sentence_too_long_is_split_between_words_and_a_word_too_long_inside() -> None:
    words = " ".join(f"word{n}" for n in range(60))
    giant = "x" * 130
    chunks = chunk(doc(Section(text=f"{words} {giant} tail")), max_chars=50, overlap_chars=0)
    assert all(len(c.text) <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks[:-3]) == words
    assert [c.text for c in chunks[-3:]] == ["x" * 50, "x" * 50, "x" * 30 + " tail"]


def test_consecutive_chunks_of_a_section_overlap_at_a_sentence_start() -> None:
    chunks = chunk(doc(Section(text=sentences(30))), max_chars=200, overlap_chars=60)
    assert len(chunks) > 3
    for previous, current in pairwise(chunks):
        overlap = overlap_of(previous.text, current.text)
        assert 0 < len(overlap) <= 60
        assert overlap.startswith("Rule number")
        assert len(current.text) <= 200


def test_the_overlap_falls_back_to_a_word_start() -> None:
    text = " ".join(f"w{n:03d}" for n in range(100))  # one sentence, no punctuation
    chunks = chunk(doc(Section(text=text)), max_chars=100, overlap_chars=22)
    for previous, current in pairwise(chunks):
        overlap = overlap_of(previous.text, current.text)
        assert 0 < len(overlap) <= 22
        assert overlap.split(" ")[0] in text.split(" ")


def test_no_overlap_crosses_sections() -> None:
    chunks = chunk(
        doc(Section(text=sentences(10), page=1), Section(text=sentences(10, 100), page=2)),
        max_chars=200,
        overlap_chars=80,
    )
    first_of_page_two = next(c for c in chunks if c.page == 2)
    assert first_of_page_two.text.startswith("Rule number 100 ")


def test_positions_are_contiguous_across_the_document() -> None:
    chunks = chunk(
        doc(
            Section(text=sentences(12), page=1),
            Section(text="   ", page=2),
            Section(text=sentences(12, 50), page=3),
        ),
        max_chars=150,
    )
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 3}
    assert all(c.text.strip() == c.text and c.text for c in chunks)


def test_headings_are_metadata_not_text() -> None:
    [only] = chunk(doc(Section(text="Sale items are final.", heading="Refunds > Exceptions")))
    assert only.text == "Sale items are final."
    assert only.heading == "Refunds > Exceptions"


def test_chunking_is_deterministic() -> None:
    document = doc(Section(text=sentences(50), page=1), Section(text=sentences(7), heading="H"))
    assert chunk(document, max_chars=180) == chunk(document, max_chars=180)


@pytest.mark.parametrize(("max_chars", "overlap_chars"), [(0, 0), (100, -1)])
def test_bad_limits_are_a_programming_error(max_chars: int, overlap_chars: int) -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk(doc(Section(text="x")), max_chars=max_chars, overlap_chars=overlap_chars)


def test_an_overlap_wider_than_a_chunk_still_keeps_chunks_within_the_limit() -> None:
    chunks = chunk(doc(Section(text=sentences(20))), max_chars=120, overlap_chars=500)
    assert len(chunks) > 3
    assert all(len(c.text) <= 120 for c in chunks)
    assert all(overlap_of(a.text, b.text) for a, b in pairwise(chunks))
