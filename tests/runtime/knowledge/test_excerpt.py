"""The offline answer quotes the sentences of the best passage that answer, not all of it."""

from __future__ import annotations

from runtime.knowledge.excerpt import MAX_QUOTE_CHARS, excerpt

POLICY = (
    "Our shop opened in 1998 and has grown ever since. We sell books, maps and prints. "
    "Refunds are paid within 14 days of the return reaching us. "
    "Shipping abroad takes two weeks.\n\n"
    "Prints are packed flat."
)


def test_the_sentence_holding_the_questions_terms_is_quoted() -> None:
    quoted = excerpt(POLICY, "How long do refunds take?")
    assert quoted.startswith("Refunds are paid within 14 days")
    assert "1998" not in quoted


def test_the_found_chunk_breaks_a_tie() -> None:
    text = "Returns: send the parcel back. Refunds follow the return. Refunds go to your card."
    assert excerpt(text, "refunds", focus="Refunds go to your card.") == (
        "Refunds go to your card."
    )
    assert excerpt(text, "refunds").startswith("Refunds follow the return.")


def test_a_short_quote_goes_on_within_bounds() -> None:
    text = "Opening hours: Monday to Friday, 9 to 5. Saturdays 10 to 2. Closed on Sundays."
    assert excerpt(text, "opening hours") == text
    long = " ".join(f"Sentence {n} about hours is quite long and keeps going." for n in range(40))
    assert len(excerpt(long, "hours")) <= MAX_QUOTE_CHARS


def test_without_a_common_term_the_found_chunk_is_quoted() -> None:
    found = "Refunds are paid within 14 days of the return reaching us."
    assert excerpt(POLICY, "Is it any good?", focus=found) == found
    assert excerpt(POLICY, "Is it any good?").startswith("Our shop opened in 1998")
