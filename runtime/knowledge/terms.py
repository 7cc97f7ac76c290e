"""Keyword terms: what hybrid retrieval matches exactly, beside the embedding's meaning.

Text is normalised and split into words as the embedder's own tokenizer does it (BERT's
normaliser and pre-tokenizer: lowercase, accents stripped, punctuation apart, each CJK character
a word), stop words are dropped and the rest stemmed (Snowball English), so "revised versions"
meets "revise the version". A term's index in a sparse vector is a stable 32-bit hash of its
stem, the same in every process. A chunk's weights saturate with repetition (BM25's term part);
the vector store weighs them by inverse document frequency, so rare terms count most.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers.normalizers import Normalizer
    from tokenizers.pre_tokenizers import PreTokenizer

# BM25's term saturation and length normalisation, against a typical chunk's number of terms.
_K1 = 1.2
_B = 0.75
_TYPICAL_TERMS = 90
_MAX_WORD_CHARS = 40  # longer "words" (hashes, base64) are noise, not terms
_MAX_EXTENSION = 4  # ".txt", ".html": a file name's ending, not a word of its title
# A title term's weight in each chunk of its source: BM25's for a term said once in a chunk of
# typical length, (k1 + 1) / (1 + k1).
TITLE_WEIGHT = 1.0

# Function words: they match everything and say nothing about where an answer is.
_STOP_WORDS_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    shall may might must also s t d ll m o re ve y
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@dataclass(frozen=True, slots=True)
class SparseTerms:
    """A sparse vector: term indices (ascending, unique) and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.indices)


class _Splitter:
    """The embedder's normaliser and pre-tokenizer, made once (thread-safe to call)."""

    _lock = threading.Lock()
    _made: tuple[Normalizer, PreTokenizer] | None = None

    @classmethod
    def words(cls, text: str) -> list[str]:
        if cls._made is None:
            with cls._lock:
                if cls._made is None:
                    from tokenizers.normalizers import BertNormalizer
                    from tokenizers.pre_tokenizers import BertPreTokenizer

                    cls._made = (BertNormalizer(lowercase=True), BertPreTokenizer())
        normalizer, splitter = cls._made
        return [word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text))]


_stemmers = threading.local()  # a Snowball stemmer keeps its work on itself: one per thread


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        import snowballstemmer

        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return str(stemmer.stemWord(word))


def terms(text: str) -> list[str]:
    """The stems of `text`'s words that carry meaning, in order (repeats kept)."""
    return [
        _stem(word)
        for word in _Splitter.words(text)
        if word.isalnum()
        and word not in STOP_WORDS
        and len(word) <= _MAX_WORD_CHARS
        and (len(word) > 1 or not word.isascii())  # "e" and "g" of "e.g."; a CJK character stays
    ]


@lru_cache(maxsize=200_000)
def term_index(stem: str) -> int:
    """A term's index in sparse vectors: a stable 32-bit hash (collisions are rare and cost
    only a spurious match)."""
    return int.from_bytes(hashlib.blake2b(stem.encode(), digest_size=4).digest(), "big")


def passage_vector(text: str) -> SparseTerms:
    """A chunk's keyword weights: BM25's saturated term frequency, normalised by length."""
    counts = Counter(term_index(stem) for stem in terms(text))
    length = sum(counts.values()) or 1
    norm = _K1 * (1 - _B + _B * length / _TYPICAL_TERMS)
    weights = {index: count * (_K1 + 1) / (count + norm) for index, count in counts.items()}
    ordered = sorted(weights)
    return SparseTerms(tuple(ordered), tuple(weights[index] for index in ordered))


@lru_cache(maxsize=1_000)
def title_terms(source_name: str) -> frozenset[int]:
    """The term indices of a source's name (its last path part, without an extension:
    "gpl-3.0.txt" gives "gpl"): words of its title, which hold for every chunk of it."""
    last = source_name.rstrip("/").rpartition("/")[2]
    stem, dot, extension = last.rpartition(".")
    title = (
        stem if dot and stem and extension.isalnum() and len(extension) <= _MAX_EXTENSION else last
    )
    return frozenset(term_index(term) for term in terms(title))


def query_vector(text: str) -> SparseTerms:
    """A question's keywords, each once: the store's IDF weighs them."""
    ordered = sorted({term_index(stem) for stem in terms(text)})
    return SparseTerms(tuple(ordered), (1.0,) * len(ordered))
