"""The knowledge gateway: the one way into a bot's knowledge, from a document to cited passages.

A source is identified by the hash of its extracted text, so the same text always has the same
id, and a version's spec pins exactly the sources it answers from. Vectors live per bot (a
collection per bot and embedder); which of them a turn may use is decided by the spec's list,
in Python, after the query (a payload filter is too slow in embedded Qdrant). Vectors are
written before anything refers to them; `collect` removes the ones nothing refers to any more.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from builders.spec import source_id
from runtime.knowledge.chunking import Chunk, chunk, sections_of
from runtime.knowledge.embedder import Embedder, EmbeddingError
from runtime.knowledge.extract import MAX_SOURCE_BYTES, Document, KnowledgeInputError, extract
from runtime.knowledge.fetch import fetch_url
from runtime.knowledge.store import HYBRID, VectorStore
from runtime.knowledge.terms import SparseTerms, passage_vector, query_vector

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], Awaitable[None]]  # (chunks embedded, chunks in all)
_EMBED_BATCH = 64  # chunks per embedding call and store write: the unit of progress
QUESTION_CACHE = 1_000  # recent questions' vectors (1.5 KB each with the default embedder)


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved chunk, numbered as it is shown to the model and cited in the answer."""

    number: int
    text: str
    source_id: str
    source_name: str
    page: int | None
    heading: str | None
    score: float
    focus: str | None = None  # the part of `text` that matched (a passage is widened around it)

    @property
    def citation(self) -> str:
        """`[1] refund-policy.pdf, p. 2` (or the section's heading where there are no pages)."""
        where = f", p. {self.page}" if self.page else (f", {self.heading}" if self.heading else "")
        return f"[{self.number}] {self.source_name}{where}"


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The passages a question found, best first, and how they were searched (the store's
    `HYBRID`, or why it was by meaning only)."""

    passages: list[Passage]
    search: str


@dataclass(frozen=True, slots=True)
class Ingested:
    source_id: str
    name: str
    kind: str
    chunks: int


@dataclass(frozen=True, slots=True)
class Reindexed:
    sources: int
    chunks: int


@dataclass(frozen=True, slots=True)
class _Cut:
    """A source's chunks and their keywords, ready to embed and store."""

    source_id: str
    chunks: list[Chunk]
    keywords: list[SparseTerms]


def _cut(document: Document, ident: str | None = None) -> _Cut:
    chunks = chunk(document)
    keywords = [passage_vector(c.embedded_text) for c in chunks]
    return _Cut(ident or document_id(document), chunks, keywords)


def _recut(stored: dict[str, list[Chunk]]) -> list[_Cut]:
    """Stored sources cut again, from the text their chunks hold (the source id stays: it
    names the original text, which the versions pin)."""
    cuts = []
    for ident, chunks in stored.items():
        name = chunks[0].source_name if chunks else "source"
        document = Document(name=name, kind="text", sections=sections_of(chunks))
        cuts.append(_cut(document, ident))
    return cuts


def _differs(cut: list[Chunk], stored: list[Chunk]) -> bool:
    """Whether a source cut again differs from its stored chunks."""
    return [(c.text, c.page, c.heading, c.paragraph) for c in cut] != [
        (c.text, c.page, c.heading, c.paragraph) for c in stored
    ]


def document_id(document: Document) -> str:
    """The content hash of a document's text: its immutable source id."""
    text = "\n\n".join(section.text for section in document.sections)
    return source_id(text.encode())


class KnowledgeGateway:
    def __init__(
        self,
        *,
        store: VectorStore,
        embedder: Embedder,
        allow_private_urls: bool = False,
        max_bytes: int = MAX_SOURCE_BYTES,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.allow_private_urls = allow_private_urls
        self.max_bytes = max_bytes
        self._http: httpx.AsyncClient | None = None
        self._questions: OrderedDict[str, array[float]] = OrderedDict()

    # -- reading sources ------------------------------------------------------------------------

    async def read_file(
        self, *, name: str, content: bytes, content_type: str | None = None
    ) -> Document:
        """A file's text (parsing runs in a thread); KnowledgeInputError for bad input."""
        return await asyncio.to_thread(
            extract,
            name=name,
            content=content,
            content_type=content_type,
            max_bytes=self.max_bytes,
        )

    async def read_url(self, url: str) -> Document:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return await fetch_url(
            url, client=self._http, allow_private=self.allow_private_urls, max_bytes=self.max_bytes
        )

    # -- writing and reading vectors ------------------------------------------------------------

    async def ingest(
        self, *, bot_id: int, document: Document, progress: Progress | None = None
    ) -> Ingested:
        """Chunk, embed and store a document's vectors (idempotent for the same text: the points
        are overwritten in place, so a live version that uses them keeps answering)."""
        cut = await asyncio.to_thread(_cut, document)  # CPU work on 20 MB of text
        if not cut.chunks:
            raise KnowledgeInputError(f"{document.name} has no text")
        dimension = await self._dimension()
        await self._store(bot_id, dimension, [cut], progress)
        return Ingested(
            source_id=cut.source_id, name=document.name, kind=document.kind, chunks=len(cut.chunks)
        )

    async def reindex(self, *, bot_id: int, progress: Progress | None = None) -> Reindexed:
        """Cut a bot's stored sources again with today's chunker, with keywords, from the text
        their chunks hold. A collection made before keywords is only read: the new chunks go to
        the hybrid collection, and the old one is dropped once all is stored, so an interrupted
        re-index loses nothing and starts again. Sources already cut as today are left alone
        (nothing is embedded again). Retrieval keeps answering meanwhile. A change to how
        chunks are cut must come with a new collection name, so that it too is re-indexed
        from a collection it only reads."""
        dimension = await self._dimension()
        bot, embedder = str(bot_id), self.embedder.id
        legacy = await self.store.has_legacy(bot_id=bot, embedder_id=embedder, dimension=dimension)
        stored = await self.store.stored_chunks(
            bot_id=bot, embedder_id=embedder, dimension=dimension, legacy=legacy
        )
        cuts = await asyncio.to_thread(_recut, stored)
        changed = [cut for cut in cuts if legacy or _differs(cut.chunks, stored[cut.source_id])]
        await self._store(bot_id, dimension, changed, progress, reindexing=True)
        if legacy:
            await self.store.drop_legacy(bot_id=bot, embedder_id=embedder, dimension=dimension)
        return Reindexed(sources=len(cuts), chunks=sum(len(c.chunks) for c in cuts))

    async def has_legacy(self, bot_id: int) -> bool:
        """Whether the bot's knowledge was stored before keywords (and wants `reindex`)."""
        if not await self.store.has_bot(bot_id=str(bot_id)):
            return False  # nothing stored: no need to load the embedder to find out
        dimension = await self._dimension()
        return await self.store.has_legacy(
            bot_id=str(bot_id), embedder_id=self.embedder.id, dimension=dimension
        )

    async def _store(
        self,
        bot_id: int,
        dimension: int,
        cuts: Sequence[_Cut],
        progress: Progress | None,
        *,
        reindexing: bool = False,
    ) -> None:
        """Embed and write the chunks in batches (the unit of progress), then drop each
        source's chunks beyond its new last one (the same text cut differently before). A
        re-index writes the hybrid collection only."""
        total, done = sum(len(cut.chunks) for cut in cuts), 0
        for cut in cuts:
            for start in range(0, len(cut.chunks), _EMBED_BATCH):
                batch = cut.chunks[start : start + _EMBED_BATCH]
                vectors = await self._embed([c.embedded_text for c in batch])
                await self.store.upsert(
                    bot_id=str(bot_id),
                    embedder_id=self.embedder.id,
                    dimension=dimension,
                    source_id=cut.source_id,
                    chunks=batch,
                    vectors=vectors,
                    keywords=cut.keywords[start : start + _EMBED_BATCH],
                    legacy_too=not reindexing,
                )
                done += len(batch)
                if progress is not None:
                    await progress(done, total)
            await self.store.trim_source(
                bot_id=str(bot_id),
                embedder_id=self.embedder.id,
                dimension=dimension,
                source_id=cut.source_id,
                keep=len(cut.chunks),
                legacy_too=not reindexing,
            )

    async def retrieve(
        self,
        *,
        bot_id: int,
        source_ids: frozenset[str],
        text: str,
        limit: int,
        min_score: float,
    ) -> Retrieved:
        """The passages of `source_ids` that best match `text` (by meaning and by keywords),
        at least `min_score` close by meaning, best first, numbered from 1."""
        if not source_ids or not text.strip():
            return Retrieved([], HYBRID)
        dimension = await self._dimension()
        vector = await self._question(text)
        found = await self.store.query(
            bot_id=str(bot_id),
            embedder_id=self.embedder.id,
            dimension=dimension,
            vector=vector,
            keywords=query_vector(text),
            source_ids=source_ids,
            limit=limit,
            score_threshold=min_score,
        )
        passages = [
            Passage(
                number=number,
                text=hit.chunk.text,
                source_id=hit.source_id,
                source_name=hit.chunk.source_name,
                page=hit.chunk.page,
                heading=hit.chunk.heading,
                score=hit.score,
                focus=hit.focus,
            )
            for number, hit in enumerate(found.hits, start=1)
        ]
        return Retrieved(passages, found.search)

    async def chunk_count(self, *, bot_id: int, source_ids: Sequence[str]) -> dict[str, int]:
        """How many chunks each source has stored (for listings)."""
        dimension = await self._dimension()
        return await self.store.counts(
            bot_id=str(bot_id),
            embedder_id=self.embedder.id,
            dimension=dimension,
            source_ids=list(source_ids),
        )

    async def collect(self, *, bot_id: int, keep: set[str]) -> int:
        """Delete the bot's sources that nothing (draft or version) refers to; how many."""
        if not await self.store.has_bot(bot_id=str(bot_id)):
            return 0  # nothing stored: no need to load the embedder to find out
        dimension = await self._dimension()
        stored = await self.store.source_ids(
            bot_id=str(bot_id), embedder_id=self.embedder.id, dimension=dimension
        )
        orphans = stored - keep
        for orphan in orphans:
            await self.store.delete_source(
                bot_id=str(bot_id),
                embedder_id=self.embedder.id,
                dimension=dimension,
                source_id=orphan,
            )
        return len(orphans)

    async def stored_bots(self) -> set[int]:
        """The bots whose knowledge is stored (to sweep those deleted meanwhile)."""
        return {int(bot) for bot in await self.store.bots()}

    async def drop_bot(self, bot_id: int) -> None:
        await self.store.drop_bot(bot_id=str(bot_id))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.store.close()

    async def _dimension(self) -> int:
        try:
            return await self.embedder.ensure_ready()
        except EmbeddingError as exc:
            raise KnowledgeInputError(f"the embedding model failed: {exc}") from None

    async def _question(self, text: str) -> Sequence[float]:
        """A question's vector; the same question again (FAQ traffic) is not embedded twice."""
        key = " ".join(text.split()).lower()
        vector = self._questions.get(key)
        if vector is None:
            (embedded,) = await self._embed([text])
            vector = self._questions[key] = array("f", embedded)  # 4 bytes a number
            if len(self._questions) > QUESTION_CACHE:
                self._questions.popitem(last=False)
        else:
            self._questions.move_to_end(key)
        return vector

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return await self.embedder.embed(texts)
        except EmbeddingError as exc:
            raise KnowledgeInputError(f"the embedding model failed: {exc}") from None
