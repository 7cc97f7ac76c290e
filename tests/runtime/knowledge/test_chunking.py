"""Chunks stand alone: whole sentences under their heading path, short sections merged,
deterministic; stored chunks give back the sections they were cut from."""

from __future__ import annotations

import pytest

from runtime.knowledge.chunking import Chunk, chunk, sections_of, sentences
from runtime.knowledge.extract import Document, Section


def doc(*sections: Section) -> Document:
    return Document(name="policy.pdf", kind="pdf", sections=sections)


def rules(count: int, start: int = 0) -> str:
    return " ".join(f"Rule number {n} applies to every order." for n in range(start, start + count))


def test_sections_on_different_pages_are_never_merged_and_carry_page_and_heading() -> None:
    chunks = chunk(
        doc(
            Section(text="Refunds take 14 days.", page=1, heading="Refunds"),
            Section(text="Shipping takes 3 days.", page=2, heading="Shipping"),
        )
    )
    assert chunks == [
        Chunk("Refunds take 14 days.", "policy.pdf", 0, 1, "Refunds", paragraph=True),
        Chunk("Shipping takes 3 days.", "policy.pdf", 1, 2, "Shipping", paragraph=True),
    ]


def test_short_neighbouring_sections_merge_under_the_first_heading() -> None:
    chunks = chunk(
        doc(
            Section(text="Refunds take 14 days.", heading="FAQ > Refunds"),
            Section(text="Shipping takes 3 days.", heading="FAQ > Shipping"),
            Section(text=rules(8), heading="FAQ > Rules"),
        ),
        max_chars=1000,
        min_chars=60,
    )
    assert chunks[0] == Chunk(
        "Refunds take 14 days.\n\nShipping\n\nShipping takes 3 days.",
        "policy.pdf",
        0,
        heading="FAQ > Refunds",
        paragraph=True,
    )
    # A section that is not short keeps its own heading, after a short one too.
    assert {c.heading for c in chunks[1:]} == {"FAQ > Rules"}
    assert chunks[1].text.startswith("Rule number 0 ")
    long = chunk(
        doc(Section(text=rules(3), heading="A"), Section(text=rules(3), heading="B")),
        min_chars=60,
    )
    assert (long[0].heading, long[-1].heading) == ("A", "B")


def test_whole_paragraphs_are_packed_and_whitespace_normalised() -> None:
    text = "First   paragraph\nwraps here.\n\n\n  Second\tone.  \n \nThird."
    [only] = chunk(doc(Section(text=text)), max_chars=100)
    assert only.text == "First paragraph wraps here.\n\nSecond one.\n\nThird."


def test_a_paragraph_that_does_not_fit_starts_the_next_chunk() -> None:
    first, second, third = "A" * 40 + ".", "Bee " * 9 + "end.", "Cee sea."
    chunks = chunk(doc(Section(text=f"{first}\n\n{second}\n\n{third}")), max_chars=60)
    assert [c.text for c in chunks] == [first, f"{second}\n\n{third}"]


def test_a_long_paragraph_is_cut_only_between_sentences() -> None:
    text = rules(40)
    chunks = chunk(doc(Section(text=text, page=3)), max_chars=200)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    assert all(c.text.startswith("Rule number") and c.text.endswith("order.") for c in chunks)
    assert " ".join(c.text for c in chunks) == text
    assert {c.page for c in chunks} == {3}


def test_a_sentence_too_long_is_cut_between_words_and_a_word_too_long_inside() -> None:
    words = " ".join(f"word{n}" for n in range(60))
    giant = "x" * 130
    chunks = chunk(doc(Section(text=f"{words} {giant} tail")), max_chars=50)
    assert all(len(c.text) <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks[:-3]) == words
    assert [c.text for c in chunks[-3:]] == ["x" * 50, "x" * 50, "x" * 30 + " tail"]


def test_one_huge_paragraph_without_punctuation_still_fits_the_chunks() -> None:
    text = " ".join(f"w{n:04d}" for n in range(2000))
    chunks = chunk(doc(Section(text=text)), max_chars=300)
    assert all(0 < len(c.text) <= 300 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_chunks_know_whether_they_open_a_paragraph() -> None:
    text = f"{rules(3)}\n\n{rules(3, 10)}"
    chunks = chunk(doc(Section(text=text)), max_chars=40)  # a sentence each
    assert [c.paragraph for c in chunks] == [True, False, False, True, False, False]
    assert chunks[3].text.startswith("Rule number 10 ")


def test_no_chunk_crosses_sections() -> None:
    chunks = chunk(
        doc(Section(text=rules(10), page=1), Section(text=rules(10, 100), page=2)),
        max_chars=200,
    )
    first_of_page_two = next(c for c in chunks if c.page == 2)
    assert first_of_page_two.text.startswith("Rule number 100 ")


def test_positions_are_contiguous_across_the_document() -> None:
    chunks = chunk(
        doc(
            Section(text=rules(12), page=1),
            Section(text="   ", page=2),
            Section(text=rules(12, 50), page=3),
        ),
        max_chars=150,
    )
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.page for c in chunks} == {1, 3}
    assert all(c.text.strip() == c.text and c.text for c in chunks)


def test_headings_are_metadata_and_give_the_embedding_its_context() -> None:
    [only] = chunk(doc(Section(text="Sale items are final.", heading="Refunds > Exceptions")))
    assert only.text == "Sale items are final."
    assert only.heading == "Refunds > Exceptions"
    assert only.embedded_text == "Refunds > Exceptions\nSale items are final."


def test_chunking_is_deterministic() -> None:
    document = doc(Section(text=rules(50), page=1), Section(text=rules(7), heading="H"))
    assert chunk(document, max_chars=180) == chunk(document, max_chars=180)


def test_a_bad_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk(doc(Section(text="x")), max_chars=0)


def test_stored_chunks_give_back_their_sections_to_cut_again() -> None:
    document = doc(
        Section(text=f"{rules(6)}\n\n{rules(4, 20)}", page=1, heading="Orders"),
        Section(text=rules(5, 40), page=2, heading="Orders"),
    )
    chunks = chunk(document, max_chars=120)
    rebuilt = sections_of(list(reversed(chunks)))
    assert rebuilt == document.sections
    assert chunk(doc(*rebuilt), max_chars=120) == chunks


def test_chunks_stored_before_drop_the_overlap_they_opened_with() -> None:
    """Chunks made before chunks were small overlapped; their paragraphs are not known."""
    first = "Refunds take five business days. The money goes back to the card you paid with."
    second = "The money goes back to the card you paid with. Gift cards are final."
    third = "Shipping is free above 50 euros."
    stored = [Chunk(text, "policy.pdf", n) for n, text in enumerate((first, second, third))]
    (section,) = sections_of(stored)
    assert section.text == (
        "Refunds take five business days. The money goes back to the card you paid with. "
        "Gift cards are final.\n\nShipping is free above 50 euros."
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three? Four.", ["One.", "Two!", "Three?", "Four."]),
        ("Use e.g. the form. Then stop.", ["Use e.g. the form.", "Then stop."]),
        ("See Sec. 5 for this. Dr. Who agrees.", ["See Sec. 5 for this.", "Dr. Who agrees."]),
        ("J. R. Smith wrote it. Fine.", ["J. R. Smith wrote it.", "Fine."]),
        ("It ends (as said.) Then more.", ["It ends (as said.)", "Then more."]),
        ('"Quoted." Next.', ['"Quoted."', "Next."]),
        ("version 3. and later apply", ["version 3. and later apply"]),
        ("no punctuation at all", ["no punctuation at all"]),
    ],
)
def test_sentences_end_at_punctuation_but_not_at_abbreviations(
    text: str, expected: list[str]
) -> None:
    assert sentences(text) == expected
