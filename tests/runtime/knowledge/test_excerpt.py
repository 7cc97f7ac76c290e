"""The offline answer quotes the sentences of the best passage that answer, not all of it."""

from __future__ import annotations

from runtime.knowledge.excerpt import MAX_QUOTE_CHARS, excerpt

FILLER = " ".join(["Our shop opened in 1998 and has grown ever since, year after year."] * 4)
POLICY = (
    f"{FILLER}\n\n"
    "We sell books, maps and prints. Refunds are paid within 14 days of the return reaching us. "
    "Shipping abroad takes two weeks.\n\n"
    f"{FILLER}"
)


def test_the_sentence_holding_the_questions_terms_is_quoted_after_the_one_before_it() -> None:
    quoted = excerpt(POLICY, "How long do refunds take?")
    assert quoted.startswith("We sell books, maps and prints. Refunds are paid within 14 days")
    assert "Shipping abroad takes two weeks." in quoted
    assert len(quoted) <= MAX_QUOTE_CHARS


def test_a_paragraphs_first_sentence_is_quoted_without_the_paragraph_before() -> None:
    quoted = excerpt(POLICY, "What do you sell?")
    assert quoted.startswith("We sell books")
    assert "1998" not in quoted.partition("We sell")[0]


def test_the_found_chunk_breaks_a_tie() -> None:
    text = "Returns: send the parcel back. Refunds follow the return.\n\nRefunds go to your card."
    assert excerpt(text, "refunds", focus="Refunds go to your card.") == (
        "Refunds go to your card."
    )
    assert excerpt(text, "refunds").startswith("Returns: send the parcel back. Refunds follow")


def test_the_sources_name_picks_no_sentence() -> None:
    header = f"This file is under the MPL. {FILLER} {FILLER}"
    text = f"{header}\n\nAny warranty is disclaimed, as far as the law allows."
    quoted = excerpt(text, "Does the MPL give a warranty?", source_name="mpl-2.0.txt")
    assert quoted.startswith("Any warranty is disclaimed")
    assert excerpt(text, "Does the MPL give a warranty?").startswith("This file is under")


def test_without_a_common_term_the_found_chunk_is_quoted() -> None:
    found = "Refunds are paid within 14 days of the return reaching us."
    assert excerpt(POLICY, "Is it any good?", focus=found).startswith(
        "We sell books, maps and prints. " + found
    )
    assert excerpt(POLICY, "Is it any good?").startswith("Our shop opened in 1998")


def test_bad_input_is_quoted_within_bounds() -> None:
    no_punctuation = " ".join(f"word{n} refunds" if n == 300 else f"word{n}" for n in range(600))
    quoted = excerpt(no_punctuation, "refunds?")
    assert "refunds" in quoted
    assert len(quoted) <= MAX_QUOTE_CHARS
    assert excerpt(POLICY, "what is it that they have?")  # only stop words
    german = "Die Rückerstattung erfolgt binnen 14 Tagen. Der Versand dauert zwei Wochen."
    assert excerpt(german, "Wann kommt die Rückerstattung?").startswith("Die Rückerstattung")
    assert excerpt("", "refunds?") == ""
