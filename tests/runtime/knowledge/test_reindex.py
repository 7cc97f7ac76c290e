"""Knowledge stored before keywords (one unnamed dense vector per 1,000-character chunk, as
earlier versions wrote it) keeps answering, is re-indexed into small chunks with keywords, and
answers during the re-index; a re-index of today's knowledge changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from runtime.knowledge.embedder import OnnxMiniLmEmbedder
from runtime.knowledge.extract import extract
from runtime.knowledge.gateway import KnowledgeGateway, document_id
from runtime.knowledge.store import (
    HYBRID,
    NOT_REINDEXED,
    VectorStore,
    collection_name,
    legacy_collection_name,
    point_id,
)

BOT = 7
POLICY = "\n\n".join(
    [
        "# Returns",
        *(f"Rule {n}: items of kind {n} may be returned within {n + 10} days." for n in range(120)),
        "# Refunds",
        "Refunds take five business days after we receive the returned item. A refund goes "
        "back to the card you paid with. Refunds for gift cards are not possible. If a refund "
        "is late, write to refunds@example.com and we look into it. Refunds of shipping costs "
        "are paid only when the item arrived damaged. Partial refunds are made for items "
        "returned without their box.",
        "# Shipping",
        *(f"Parcels to zone {n} arrive in {n + 2} days by standard post." for n in range(120)),
    ]
)


@pytest.fixture(scope="module")
def embedder() -> OnnxMiniLmEmbedder:
    return OnnxMiniLmEmbedder()


def old_chunks(text: str) -> list[str]:
    """Chunks as earlier versions cut them: ~1,000 characters, each opening with the last
    ~150 characters of the one before."""
    flat = " ".join(text.split())
    pieces, start = [], 0
    while start < len(flat):
        end = min(len(flat), start + 1000)
        pieces.append(flat[start:end])
        if end == len(flat):
            break
        start = flat.index(" ", end - 150) + 1
    return pieces


@pytest.fixture
async def legacy(tmp_path: Path, embedder: OnnxMiniLmEmbedder) -> AsyncIterator[KnowledgeGateway]:
    """A gateway over a folder holding one bot's knowledge in the legacy shape."""
    folder = str(tmp_path / "qdrant")
    document = extract(name="policy.md", content=POLICY.encode())
    source = document_id(document)
    pieces = old_chunks(POLICY)
    dimension = await embedder.ensure_ready()
    vectors = await embedder.embed(pieces)
    client = QdrantClient(path=folder)
    name = legacy_collection_name(str(BOT), embedder.id, dimension)
    client.create_collection(
        name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.DOT)
    )
    client.upsert(
        name,
        points=[
            models.PointStruct(
                id=point_id(source, position),
                vector=vector,
                payload={
                    "source_id": source,
                    "source_name": "policy.md",
                    "position": position,
                    "page": None,
                    "heading": None,
                    "text": text,
                },
            )
            for position, (text, vector) in enumerate(zip(pieces, vectors, strict=True))
        ],
    )
    client.close()
    gateway = KnowledgeGateway(store=VectorStore(folder), embedder=embedder)
    yield gateway
    await gateway.close()


async def ask(gateway: KnowledgeGateway, text: str) -> tuple[list[str], str]:
    """The passages' texts, best first, and how they were searched."""
    source = document_id(extract(name="policy.md", content=POLICY.encode()))
    found = await gateway.retrieve(
        bot_id=BOT, source_ids=frozenset({source}), text=text, limit=4, min_score=0.2
    )
    assert found.passages, text
    return [p.text for p in found.passages], found.search


async def test_legacy_knowledge_answers_until_it_is_reindexed(legacy: KnowledgeGateway) -> None:
    texts, search = await ask(legacy, "How long do refunds take?")
    assert search == NOT_REINDEXED and any("five business days" in t for t in texts)
    assert await legacy.has_legacy(BOT)

    answered: list[str] = []

    async def meanwhile(done: int, total: int) -> None:
        if done < total:  # the re-index is under way: the bot still answers
            passages, searched = await ask(legacy, "How long do refunds take?")
            answered.append(searched)
            assert any("five business days" in t for t in passages)

    done = await legacy.reindex(bot_id=BOT, progress=meanwhile)

    assert answered and set(answered) == {NOT_REINDEXED}
    assert done.sources == 1 and done.chunks > 64  # small chunks now, written in batches
    assert not await legacy.has_legacy(BOT)
    (best, *_), search = await ask(legacy, "How long do refunds take?")
    assert search == HYBRID and "Refunds take five business days" in best
    assert "Rule 3:" not in best  # the passage is the refunds section's, not a 1,000-char cut


async def test_a_reindex_of_todays_knowledge_changes_nothing(
    tmp_path: Path, embedder: OnnxMiniLmEmbedder
) -> None:
    gateway = KnowledgeGateway(store=VectorStore(":memory:"), embedder=embedder)
    try:
        ingested = await gateway.ingest(
            bot_id=BOT, document=extract(name="policy.md", content=POLICY.encode())
        )
        before = await ask(gateway, "Which zone arrives in 9 days?")
        done = await gateway.reindex(bot_id=BOT)
        assert (done.sources, done.chunks) == (1, ingested.chunks)
        assert await ask(gateway, "Which zone arrives in 9 days?") == before
        dimension = await embedder.ensure_ready()
        assert collection_name(str(BOT), embedder.id, dimension).endswith("-hybrid")
    finally:
        await gateway.close()


async def test_a_bot_with_nothing_stored_has_nothing_to_reindex(
    embedder: OnnxMiniLmEmbedder,
) -> None:
    gateway = KnowledgeGateway(store=VectorStore(":memory:"), embedder=embedder)
    try:
        assert not await gateway.has_legacy(BOT)
        done = await asyncio.wait_for(gateway.reindex(bot_id=BOT), 30)
        assert (done.sources, done.chunks) == (0, 0)
    finally:
        await gateway.close()


class Stopped(Exception):
    """The service stopped in the middle of a re-index."""


async def test_an_interrupted_reindex_loses_nothing(legacy: KnowledgeGateway) -> None:
    async def stop(done: int, total: int) -> None:
        raise Stopped  # after the first batch was written

    with pytest.raises(Stopped):
        await legacy.reindex(bot_id=BOT, progress=stop)
    assert await legacy.has_legacy(BOT)  # still the one that answers, whole
    texts, search = await ask(legacy, "Which zone arrives in 121 days by standard post?")
    assert search == NOT_REINDEXED and any("zone 119 arrive in 121 days" in t for t in texts)

    done = await legacy.reindex(bot_id=BOT)  # the next start does it all again

    assert not await legacy.has_legacy(BOT)
    (best, *_), search = await ask(legacy, "Which zone arrives in 121 days by standard post?")
    assert search == HYBRID and "Parcels to zone 119 arrive in 121 days" in best
    again = await legacy.reindex(bot_id=BOT)  # nothing left to do: the same cut
    assert (again.sources, again.chunks) == (done.sources, done.chunks)
