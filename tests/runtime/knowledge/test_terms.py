"""Keyword terms and sparse vectors: the embedder's normalisation, stop words out, stems in."""

from __future__ import annotations

from runtime.knowledge.terms import passage_vector, query_vector, term_index, terms, title_terms


def test_terms_are_stems_of_the_words_that_carry_meaning() -> None:
    said = terms("The work must carry Prominent Notices, e.g. revised versions!")
    assert said == ["work", "carri", "promin", "notic", "revis", "version"]
    assert terms("revise the version") == ["revis", "version"]  # meets "revised versions"


def test_accents_case_numbers_and_other_scripts() -> None:
    assert terms("Café CAFE 131047") == ["cafe", "cafe", "131047"]
    assert terms("日本語") == ["日", "本", "語"]  # each CJK character a word, as the embedder
    assert terms("a " + "x" * 41) == []  # a 41-letter "word" is noise


def test_a_question_of_stop_words_has_no_terms() -> None:
    assert not query_vector("what is it that they have?")


def test_term_indices_are_stable_32_bit_hashes() -> None:
    assert term_index("promin") == term_index("promin") < 2**32
    assert term_index("promin") != term_index("notic")


def test_passage_weights_saturate_with_repetition_and_shrink_with_length() -> None:
    once, thrice = passage_vector("refund"), passage_vector("refund refund refund")
    assert once.indices == thrice.indices == (term_index("refund"),)
    assert once.values[0] < thrice.values[0] < 3 * once.values[0]
    diluted = passage_vector("refund " + " ".join(f"word{n}" for n in range(300)))
    weight = dict(zip(diluted.indices, diluted.values, strict=True))[term_index("refund")]
    assert weight < once.values[0]
    assert list(diluted.indices) == sorted(set(diluted.indices))


def test_a_question_counts_each_term_once() -> None:
    asked = query_vector("refund refund policy")
    assert asked.values == (1.0, 1.0)
    assert set(asked.indices) == {term_index("refund"), term_index("polici")}


def test_a_sources_title_terms_come_from_its_name_without_the_extension() -> None:
    assert title_terms("gpl-3.0.txt") == {term_index("gpl")}
    assert title_terms("example.com/refund-policy.html") == {
        term_index("refund"),
        term_index("polici"),
    }
    assert title_terms("notes") == {term_index("note")}
    assert title_terms("the.") == frozenset()
