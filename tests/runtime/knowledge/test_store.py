"""The vector store, embedded in memory and in a folder (the same contract for both)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from runtime.knowledge.chunking import Chunk
from runtime.knowledge.store import (
    HYBRID,
    NO_KEYWORDS,
    REACH,
    WINDOW_CHARS,
    Hit,
    VectorStore,
    collection_name,
    legacy_collection_name,
)
from runtime.knowledge.terms import passage_vector, query_vector

DIM = 8
EMBEDDER = "test-embedder"
SOURCE_A = "sha256:" + "a" * 64
SOURCE_B = "sha256:" + "b" * 64


def unit(*values: float) -> list[float]:
    """A vector of DIM dimensions starting with `values`, normalised."""
    vector = np.zeros(DIM)
    vector[: len(values)] = values
    return list(vector / np.linalg.norm(vector))


def chunks(source_name: str, count: int) -> list[Chunk]:
    """Chunks far apart in their source (positions 0, 10, 20...), so that no passage widens
    into another: each found chunk is a passage of its own."""
    return [
        Chunk(
            text=f"{source_name} passage {n}",
            source_name=source_name,
            position=n * 10,
            page=n + 1,
            heading=f"Part {n}",
        )
        for n in range(count)
    ]


@pytest.fixture(params=["memory", "folder"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[VectorStore]:
    location = ":memory:" if request.param == "memory" else str(tmp_path / "qdrant")
    vector_store = VectorStore(location)
    yield vector_store
    await vector_store.close()


async def put(
    store: VectorStore,
    source_id: str,
    stored: Sequence[Chunk],
    vectors: Sequence[Sequence[float]],
    *,
    bot_id: str = "1",
) -> None:
    await store.upsert(
        bot_id=bot_id,
        embedder_id=EMBEDDER,
        dimension=DIM,
        source_id=source_id,
        chunks=stored,
        vectors=vectors,
        keywords=[passage_vector(c.text) for c in stored],
    )


async def ask(
    store: VectorStore,
    vector: Sequence[float],
    sources: frozenset[str] = frozenset({SOURCE_A, SOURCE_B}),
    *,
    limit: int = 3,
    score_threshold: float | None = None,
    bot_id: str = "1",
    words: str = "",
) -> list[Hit]:
    found = await store.query(
        bot_id=bot_id,
        embedder_id=EMBEDDER,
        dimension=DIM,
        vector=vector,
        keywords=query_vector(words),
        source_ids=sources,
        limit=limit,
        score_threshold=score_threshold,
    )
    assert found.search == (HYBRID if words and found.hits else found.search)
    return found.hits


async def test_the_nearest_chunk_comes_first_with_its_payload(store: VectorStore) -> None:
    await put(store, SOURCE_A, chunks("faq.md", 3), [unit(1, 0), unit(0, 1), unit(1, 1)])

    hits = await ask(store, unit(0, 1, 0.1))

    assert [hit.chunk.position for hit in hits] == [10, 20, 0]
    assert hits[0].chunk == Chunk("faq.md passage 1", "faq.md", 10, 2, "Part 1")
    assert hits[0].source_id == SOURCE_A
    assert hits[0].score == pytest.approx(float(np.dot(unit(0, 1, 0.1), unit(0, 1))), abs=1e-5)
    assert hits[0].score > hits[1].score > hits[2].score


async def test_only_the_requested_sources_are_returned(store: VectorStore) -> None:
    # 30 chunks of B all score higher than A's only chunk: the over-fetch must reach past them.
    await put(store, SOURCE_B, chunks("b.md", 30), [unit(1, 0.01 * n) for n in range(30)])
    await put(store, SOURCE_A, chunks("a.md", 1), [unit(1, 1)])

    hits = await ask(store, unit(1, 0), frozenset({SOURCE_A}), limit=2)

    assert [(hit.source_id, hit.chunk.text) for hit in hits] == [(SOURCE_A, "a.md passage 0")]


async def test_a_source_buried_beyond_the_over_fetch_is_still_found(store: VectorStore) -> None:
    rng = np.random.default_rng(7)
    near = rng.normal(size=(1500, DIM)) * 0.05 + unit(1)  # 1500 chunks of B close to the query
    await put(store, SOURCE_B, chunks("b.md", 1500), list(near))
    await put(store, SOURCE_A, chunks("a.md", 2), [unit(0, 1), unit(-1, 1)])

    hits = await ask(store, unit(1), frozenset({SOURCE_A}), limit=2)

    assert [hit.chunk.position for hit in hits] == [0, 10]


async def test_reingesting_a_source_is_idempotent(store: VectorStore) -> None:
    vectors = [unit(1, n) for n in range(4)]
    await put(store, SOURCE_A, chunks("a.md", 4), vectors)
    await put(store, SOURCE_A, chunks("a.md", 4), vectors)

    hits = await ask(store, unit(1), frozenset({SOURCE_A}), limit=10)

    assert sorted(hit.chunk.position for hit in hits) == [0, 10, 20, 30]


async def test_delete_source_removes_only_that_source(store: VectorStore) -> None:
    await put(store, SOURCE_A, chunks("a.md", 2), [unit(1), unit(1, 1)])
    await put(store, SOURCE_B, chunks("b.md", 2), [unit(0, 1), unit(1, 2)])

    await store.delete_source(bot_id="1", embedder_id=EMBEDDER, dimension=DIM, source_id=SOURCE_A)

    assert {hit.source_id for hit in await ask(store, unit(1), limit=10)} == {SOURCE_B}
    assert await store.source_ids(bot_id="1", embedder_id=EMBEDDER, dimension=DIM) == {SOURCE_B}


async def test_source_ids_lists_every_source_present(store: VectorStore) -> None:
    rng = np.random.default_rng(3)
    await put(store, SOURCE_A, chunks("a.md", 1100), list(rng.normal(size=(1100, DIM))))
    await put(store, SOURCE_B, chunks("b.md", 1), [unit(1)])

    found = await store.source_ids(bot_id="1", embedder_id=EMBEDDER, dimension=DIM)

    assert found == {SOURCE_A, SOURCE_B}


async def test_drop_bot_deletes_all_its_collections_and_no_others(store: VectorStore) -> None:
    await put(store, SOURCE_A, chunks("a.md", 1), [unit(1)], bot_id="1")
    await store.upsert(
        bot_id="1",
        embedder_id="other-embedder",
        dimension=3,
        source_id=SOURCE_A,
        chunks=chunks("a.md", 1),
        vectors=[[1.0, 0.0, 0.0]],
        keywords=[passage_vector("a.md passage 0")],
    )
    await put(store, SOURCE_A, chunks("a.md", 1), [unit(1)], bot_id="12")
    await put(store, SOURCE_A, chunks("a.md", 1), [unit(1)], bot_id="1-2")

    await store.drop_bot(bot_id="1")

    assert await ask(store, unit(1), bot_id="1") == []
    assert await store.source_ids(bot_id="1", embedder_id="other-embedder", dimension=3) == set()
    assert len(await ask(store, unit(1), bot_id="12")) == 1
    assert len(await ask(store, unit(1), bot_id="1-2")) == 1


async def test_a_missing_collection_is_empty(store: VectorStore) -> None:
    assert await ask(store, unit(1), bot_id="404") == []
    assert await store.source_ids(bot_id="404", embedder_id=EMBEDDER, dimension=DIM) == set()
    await store.delete_source(bot_id="404", embedder_id=EMBEDDER, dimension=DIM, source_id="x")
    await store.drop_bot(bot_id="404")


async def test_score_threshold_drops_weak_matches(store: VectorStore) -> None:
    await put(store, SOURCE_A, chunks("a.md", 3), [unit(1), unit(1, 1), unit(0, 1)])

    hits = await ask(store, unit(1), score_threshold=0.5)

    assert [hit.chunk.position for hit in hits] == [0, 10]
    assert all(hit.score >= 0.5 for hit in hits)


async def test_mismatched_chunks_and_vectors_are_refused(store: VectorStore) -> None:
    with pytest.raises(ValueError, match="2 chunks, 1 vectors, 2 keyword vectors"):
        await put(store, SOURCE_A, chunks("a.md", 2), [unit(1)])


def test_collection_names_are_safe_and_distinct() -> None:
    assert collection_name("7", "minilm-l6-int8", 384) == "bot-7-minilm-l6-int8-384-hybrid"
    assert legacy_collection_name("7", "minilm-l6-int8", 384) == "bot-7-minilm-l6-int8-384"
    assert collection_name("a/../b", "x y", 3) == "bot-a____b-x_y-3-hybrid"
    assert collection_name("1-2", "e", 3) != collection_name("1", "2-e", 3)


NOTICES = [
    Chunk("General terms about conveying the program to others.", "gpl.txt", 0),
    Chunk("The work must carry prominent notices stating that you modified it.", "gpl.txt", 10),
    Chunk("Unrelated words about cooking pasta.", "gpl.txt", 20),
]
NOTICE_VECTORS = [unit(1, 0.2), unit(1, 0.5), unit(0, 0, 1)]


async def test_an_exact_phrase_wins_over_a_closer_but_vaguer_passage(store: VectorStore) -> None:
    await put(store, SOURCE_A, NOTICES, NOTICE_VECTORS)

    by_meaning = await ask(store, unit(1, 0.1), score_threshold=0.3)
    assert [hit.chunk.position for hit in by_meaning] == [0, 10]

    hybrid = await ask(store, unit(1, 0.1), score_threshold=0.3, words="prominent notices?")
    assert [hit.chunk.position for hit in hybrid] == [10, 0]
    # The score shown is still the cosine, and the keywords let in nothing below the threshold.
    assert hybrid[0].score == pytest.approx(float(np.dot(unit(1, 0.1), unit(1, 0.5))), abs=1e-5)
    cooking = await ask(store, unit(1, 0.1), score_threshold=0.3, words="cooking pasta")
    assert [hit.chunk.position for hit in cooking] == [0, 10]


async def test_the_sources_name_in_a_question_does_not_pick_the_line_that_names_it(
    store: VectorStore,
) -> None:
    header = Chunk("This file is under the MPL.", "mpl.txt", 0)
    warranty = Chunk("Warranty is disclaimed.", "mpl.txt", 10)
    await put(store, SOURCE_A, [header, warranty], [unit(1, 0.2), unit(1, 0.5)])
    found = await ask(store, unit(1, 0.1), words="What does the MPL say about warranties?")
    assert [hit.chunk.position for hit in found] == [10, 0]  # every chunk is of the MPL


async def test_a_question_without_keywords_is_searched_by_meaning(store: VectorStore) -> None:
    await put(store, SOURCE_A, NOTICES, NOTICE_VECTORS)
    found = await store.query(
        bot_id="1",
        embedder_id=EMBEDDER,
        dimension=DIM,
        vector=unit(1, 0.1),
        keywords=query_vector("what is it?"),
        source_ids=frozenset({SOURCE_A}),
        limit=2,
        score_threshold=None,
    )
    assert found.search == NO_KEYWORDS
    assert [hit.chunk.position for hit in found.hits] == [0, 10]


def story(source_name: str, count: int, *, every: int = 1) -> list[Chunk]:
    """Consecutive sentences of a source; every `every`-th opens a paragraph."""
    return [
        Chunk(f"Sentence {n} of {source_name}.", source_name, n, paragraph=n % every == 0)
        for n in range(count)
    ]


async def test_a_found_chunk_is_widened_with_its_neighbours(store: VectorStore) -> None:
    told = story("a.md", 30, every=3)
    await put(store, SOURCE_A, told, [unit(1, n) for n in range(30)])

    (hit,) = await ask(store, unit(1, 15), frozenset({SOURCE_A}), limit=1)

    assert hit.chunk.position == 15 and hit.focus == "Sentence 15 of a.md."
    near = range(15 - REACH, 15 + REACH + 1)
    expected = ""
    for n in near:
        said = f"Sentence {n} of a.md."
        expected += ("\n\n" if n % 3 == 0 else " ") + said if expected else said
    assert hit.chunk.text == expected
    assert hit.score == pytest.approx(float(np.dot(unit(1, 6), unit(1, 6))), abs=1e-5)


async def test_found_chunks_that_meet_are_one_passage(store: VectorStore) -> None:
    await put(store, SOURCE_A, story("a.md", 30), [unit(1, n) for n in range(30)])
    await put(store, SOURCE_B, story("b.md", 30), [unit(1, n) for n in range(30)])

    hits = await ask(store, unit(1, 15), frozenset({SOURCE_A, SOURCE_B}), limit=2)
    assert len(hits) == 2

    # Chunks 14-16 of both sources are the nearest: one passage each, never mixed.
    assert sorted(hit.source_id for hit in hits) == [SOURCE_A, SOURCE_B]
    for hit in hits:
        name = "a.md" if hit.source_id == SOURCE_A else "b.md"
        assert "Sentence 15 of " + name in hit.chunk.text
        assert ("b.md" if name == "a.md" else "a.md") not in hit.chunk.text


async def test_a_passage_widens_within_its_budget(store: VectorStore) -> None:
    long = [Chunk(f"{n} " + "word " * 100, "a.md", n) for n in range(9)]  # ~500 characters
    await put(store, SOURCE_A, long, [unit(1, n) for n in range(9)])

    (hit,) = await ask(store, unit(1, 4), frozenset({SOURCE_A}), limit=1)

    assert 1000 <= len(hit.chunk.text) <= WINDOW_CHARS
    assert hit.chunk.text.startswith(("3 ", "4 "))
