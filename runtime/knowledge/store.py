"""The vector store: bot knowledge chunks in Qdrant, one collection per (bot, embedder, dimension).

Each chunk has two vectors: its embedding (`dense`) and its keyword terms (`keywords`, a
sparse vector of BM25 term weights, `runtime.knowledge.terms`). A query is hybrid, the same
code on embedded Qdrant and on a server: one Qdrant query gives the candidates (the chunks whose
embedding is at least `score_threshold` close to the question's, with their keyword vectors),
which are ranked by that closeness plus `KEYWORD_WEIGHT` times their keyword score (BM25, the
IDF taken over the candidates) over the best candidate's. So an exact phrase can win over a
vaguer passage, but nothing unrelated to the question gets in. Scores shown are the cosine.
The words of a source's name count as said once in each of its chunks (`title_terms`): "the
MPL" in a question points at the MPL's chunks alike, not at the one line that names it.

Why not Qdrant's own sparse search and fusion query: embedded Qdrant scores sparse vectors in a
Python loop over every point (~230 ms at 10k chunks, measured); and on the bundled evaluation
(`bench/bench_retrieval.py`) the blend found more answers than reciprocal rank fusion or
distribution-based fusion did (recall at 4: 0.94 against 0.90 and 0.89).

Collections made before keywords existed (`legacy_collection_name`: one unnamed dense vector)
keep answering, by embedding alone, until `KnowledgeGateway.reindex` has rebuilt their chunks
into the hybrid collection and dropped them.

`location` is ":memory:" (tests), an http(s) URL (a Qdrant server) or a folder (embedded Qdrant,
held by one process at a time). The client is the synchronous `QdrantClient`, opened lazily and
called only from worker threads, never on the event loop.

Thread-safety, checked in qdrant_client 1.20's `local/`: embedded mode has no locks at all. An
upsert grows numpy arrays (`np.resize`, `np.append`) and mutates the dicts and lists that a
concurrent query reads, and its SQLite connections use `check_same_thread` wherever SQLite is not
built serialised (macOS). So an embedded client lives on one dedicated thread: every call is
serialised and runs on the thread that opened it, and a cancelled caller cannot let the next call
overlap the one still running (an asyncio.Lock around `to_thread` would). A server client is
thread-safe (HTTP) and gets a few threads.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from runtime.knowledge.chunking import Chunk, joined
from runtime.knowledge.terms import TITLE_WEIGHT, SparseTerms, title_terms

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

T = TypeVar("T")

# Point ids are uuid5(POINT_NAMESPACE, "source_id:position"): re-ingesting a source overwrites it.
POINT_NAMESPACE = uuid.UUID("8f0d7c52-3c1e-4b7a-9a57-2f1e6b4d9c10")
_UPSERT_BATCH = 256
_SCROLL_PAGE = 1024
# Queries over-fetch and filter by source in Python (a payload filter costs ~95 ms at 10k points in
# embedded mode, the plain search ~6 ms); past this many candidates they fall back to the filter.
_MAX_UNFILTERED_FETCH = 1024
DENSE = "dense"
KEYWORDS = "keywords"
_POOL = 40  # candidates the blend ranks, at least
_CHUNKS_PER_PASSAGE = 3  # chunks ranked for each passage asked: neighbours merge into one
REACH = 5  # neighbouring chunks a passage may take on each side of the one found
WINDOW_CHARS = 1500  # the most a passage widens to
# What a search reads of each candidate: where it is (its text comes with its neighbours').
_PLACE = ["source_id", "position", "source_name"]
KEYWORD_WEIGHT = 0.4  # of the best candidate's keyword score, beside a cosine (0 to 1)
KEYWORD_SLACK = 0.1  # how far under the threshold a chunk holding every keyword may be
HYBRID = "hybrid"
NO_KEYWORDS = "by meaning only: the question has no keywords"
NOT_REINDEXED = "by meaning only: this knowledge is not re-indexed with keywords yet"


class KnowledgeStoreError(Exception):
    """The vector store cannot be used (e.g. its folder is held by another process)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found by a query; `score` is the cosine similarity (a dot product of unit
    vectors)."""

    score: float
    chunk: Chunk
    source_id: str
    focus: str | None = None  # in a widened passage, the chunk that was found


@dataclass(frozen=True, slots=True)
class Found:
    """A query's chunks, best first, and how they were searched (`HYBRID`, `NO_KEYWORDS`,
    `NOT_REINDEXED`)."""

    hits: list[Hit]
    search: str


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


_BOT_COLLECTION = re.compile(r"^bot-([0-9]+)-")


def _bot_prefix(bot_id: str) -> str:
    # No "-" in the bot part, so that the prefix of bot "1" never matches bot "1-2"'s collections.
    return f"bot-{_safe(bot_id).replace('-', '_')}-"


def collection_name(bot_id: str, embedder_id: str, dimension: int) -> str:
    """The collection holding one bot's chunks as embedded by one embedder, with keywords."""
    return f"{legacy_collection_name(bot_id, embedder_id, dimension)}-hybrid"


def legacy_collection_name(bot_id: str, embedder_id: str, dimension: int) -> str:
    """Where chunks were kept before keywords: one unnamed dense vector each."""
    return f"{_bot_prefix(bot_id)}{_safe(embedder_id)}-{dimension}"


def _unit(vector: Sequence[float]) -> list[float]:
    """The vector scaled to length 1 (collections use DOT, which is the cosine of unit
    vectors)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def point_id(source_id: str, position: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{source_id}:{position}"))


def _chunk(payload: dict[str, Any]) -> Chunk:
    return Chunk(
        text=payload.get("text", ""),
        source_name=payload.get("source_name", ""),
        position=int(payload.get("position", 0)),
        page=payload.get("page"),
        heading=payload.get("heading"),
        paragraph=payload.get("paragraph"),
    )


def _hit(point: Any, score: float | None = None) -> Hit:
    payload = point.payload or {}
    return Hit(
        score=float(point.score if score is None else score),
        chunk=_chunk(payload),
        source_id=str(payload.get("source_id")),
    )


def _payload(source_id: str, chunk: Chunk) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "source_name": chunk.source_name,
        "position": chunk.position,
        "page": chunk.page,
        "heading": chunk.heading,
        "paragraph": chunk.paragraph,
        "text": chunk.text,
    }


def _cosine(unit: np.ndarray[Any, Any], vectors: Any) -> float:
    """The cosine of the question's unit vector and a point's stored (unit) embedding."""
    return float(np.dot(unit, np.asarray(vectors[DENSE], dtype=np.float32)))


def _names(bot_id: str, embedder_id: str, dimension: int) -> tuple[str, str]:
    """Both collections a bot's chunks may be in (the legacy one while it lasts)."""
    return (
        collection_name(bot_id, embedder_id, dimension),
        legacy_collection_name(bot_id, embedder_id, dimension),
    )


def _only(source_ids: frozenset[str]) -> Any:
    from qdrant_client import models

    return models.Filter(
        must=[models.FieldCondition(key="source_id", match=models.MatchAny(any=sorted(source_ids)))]
    )


def _likely_passages(ranked: list[Hit], limit: int) -> list[Hit]:
    """The found chunks that make the first `limit` passages, and those that may join them
    (no further than two reaches from one): the only ones whose neighbours are read."""
    kept: list[Hit] = []
    passages = 0
    for hit in ranked:
        near = any(
            other.source_id == hit.source_id
            and abs(other.chunk.position - hit.chunk.position) <= 2 * REACH + 1
            for other in kept
        )
        if not near:
            if passages == limit:
                break
            passages += 1
        kept.append(hit)
    return kept


@dataclass(slots=True)
class _Span:
    """A passage being made: the best hit in it and the positions it covers."""

    hit: Hit
    lo: int
    hi: int
    size: int

    def holds(self, source: str, position: int) -> bool:
        return self.hit.source_id == source and self.lo <= position <= self.hi


def _windows(ranked: list[Hit], chunks: dict[tuple[str, int], Chunk], limit: int) -> list[Hit]:
    """Passages from found chunks (best first) and the stored chunks around them, in the order
    of the best chunk each holds. A passage stays within its chunk's page and section (its
    citation's), a chunk is in one passage at most, and passages that meet are one where they
    fit in `WINDOW_CHARS` together. A chunk gone meanwhile (a source replaced) is skipped."""
    spans: list[_Span] = []
    for ranked_hit in ranked:
        source, position = ranked_hit.source_id, ranked_hit.chunk.position
        own = chunks.get((source, position))
        if own is None or any(span.holds(source, position) for span in spans):
            continue
        hit = replace(ranked_hit, chunk=own)
        place = (own.page, own.heading)
        span = _Span(hit, position, position, len(own.text))
        for step in range(1, REACH + 1):
            for near in (position + step, position - step):
                found = chunks.get((source, near))
                if (
                    found is None
                    or (found.page, found.heading) != place
                    or near not in (span.hi + 1, span.lo - 1)
                    or any(other.holds(source, near) for other in spans)
                    or span.size + 1 + len(found.text) > WINDOW_CHARS
                ):
                    continue
                span.lo, span.hi = min(span.lo, near), max(span.hi, near)
                span.size += 1 + len(found.text)
        meeting = next(
            (
                other
                for other in spans
                if other.hit.source_id == source
                and (other.hit.chunk.page, other.hit.chunk.heading) == place
                and span.lo - 1 <= other.hi
                and other.lo <= span.hi + 1
                and other.size + 1 + span.size <= WINDOW_CHARS
            ),
            None,
        )
        if meeting is not None:
            meeting.lo, meeting.hi = min(meeting.lo, span.lo), max(meeting.hi, span.hi)
            meeting.size += 1 + span.size
        elif len(spans) < limit:
            spans.append(span)
    return [_spanned(span.hit, span.lo, span.hi, chunks) for span in spans]


def _spanned(hit: Hit, lo: int, hi: int, chunks: dict[tuple[str, int], Chunk]) -> Hit:
    """The hit with its chunk's text widened to positions lo..hi (its own place kept)."""
    text = joined([chunks[(hit.source_id, position)] for position in range(lo, hi + 1)])
    return Hit(
        score=hit.score,
        chunk=replace(hit.chunk, text=text),
        source_id=hit.source_id,
        focus=hit.chunk.text,
    )


def _blended(
    pool: list[Any],
    sparse: dict[Any, Any],
    keywords: SparseTerms,
    limit: int,
    score_threshold: float | None,
) -> list[Any]:
    """The best `limit` of the candidates (nearest first): by cosine plus `KEYWORD_WEIGHT`
    times their keyword score over the best one's. A candidate under `score_threshold` (it was
    fetched `KEYWORD_SLACK` below it) stays only if it holds every keyword of the question."""
    held = [sparse.get(point.id) for point in pool]
    titles = [title_terms(str((point.payload or {}).get("source_name", ""))) for point in pool]
    matched = _keyword_scores(held, titles, keywords)
    best = max(matched, default=0.0) or 1.0
    asked = set(keywords.indices)
    kept = [
        i
        for i, point in enumerate(pool)
        if score_threshold is None
        or point.score >= score_threshold
        or asked <= set(getattr(held[i], "indices", ()))
    ]
    kept.sort(key=lambda i: (-(pool[i].score + KEYWORD_WEIGHT * matched[i] / best), i))
    return [pool[i] for i in kept[:limit]]


def _keywords_of(vectors: Any) -> Any:
    """A stored point's keyword vector (None: it has no keywords)."""
    return vectors.get(KEYWORDS) if isinstance(vectors, dict) else None


def _keyword_scores(
    held: list[Any], titles: list[frozenset[int]], keywords: SparseTerms
) -> list[float]:
    """Each candidate's BM25 score for the question's keywords (from the keyword vector it
    holds, if any, and its source's title terms), the IDF taken over the candidates (Qdrant's
    formula)."""
    weights = []
    for sparse, title in zip(held, titles, strict=True):
        weight = dict(zip(sparse.indices, sparse.values, strict=True)) if sparse else {}
        for term in title:
            weight[term] = max(weight.get(term, 0.0), TITLE_WEIGHT)
        weights.append(weight)
    total = len(held)
    idf = {}
    for term in keywords.indices:
        holding = sum(1 for w in weights if term in w)
        if holding:
            idf[term] = math.log(1 + (total - holding + 0.5) / (holding + 0.5))
    return [sum(w.get(term, 0.0) * rarity for term, rarity in idf.items()) for w in weights]


class VectorStore:
    """Bot knowledge in Qdrant. Opened on first use (in a thread), so start-up is not held."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._remote = location.startswith(("http://", "https://"))
        self._client: QdrantClient | None = None
        self._open_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    async def close(self) -> None:
        """Close the client (releasing an embedded folder); a later call opens it again."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_client)
        finally:
            executor.shutdown(wait=False)

    async def upsert(
        self,
        *,
        bot_id: str,
        embedder_id: str,
        dimension: int,
        source_id: str,
        chunks: Sequence[Chunk],
        vectors: Sequence[Sequence[float]],
        keywords: Sequence[SparseTerms],
        legacy_too: bool = True,
    ) -> None:
        """Store a source's chunks with their embeddings and keywords; the same source again
        overwrites them. While the bot's legacy collection still answers, it gets the
        embeddings too (`legacy_too`, but not from the re-index that reads it), so the source
        is found before the re-index is done."""
        if not len(chunks) == len(vectors) == len(keywords):
            raise ValueError(
                f"{len(chunks)} chunks, {len(vectors)} vectors, {len(keywords)} keyword vectors"
            )
        name = collection_name(bot_id, embedder_id, dimension)
        legacy = legacy_collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            if not client.collection_exists(name):
                client.create_collection(
                    name,
                    # Embedders give unit vectors, so a dot product is the cosine; and embedded
                    # Qdrant re-normalises every stored vector per COSINE query.
                    vectors_config={
                        DENSE: models.VectorParams(size=dimension, distance=models.Distance.DOT)
                    },
                    sparse_vectors_config={KEYWORDS: models.SparseVectorParams()},
                )
            units = [_unit(vector) for vector in vectors]
            points = [
                models.PointStruct(
                    id=point_id(source_id, chunk.position),
                    vector={
                        DENSE: unit,
                        **(
                            {
                                KEYWORDS: models.SparseVector(
                                    indices=[*terms.indices], values=[*terms.values]
                                )
                            }
                            if terms
                            else {}
                        ),
                    },
                    payload=_payload(source_id, chunk),
                )
                for chunk, unit, terms in zip(chunks, units, keywords, strict=True)
            ]
            for start in range(0, len(points), _UPSERT_BATCH):
                client.upsert(name, points=points[start : start + _UPSERT_BATCH], wait=True)
            if legacy_too and client.collection_exists(legacy):
                dense_only = [
                    models.PointStruct(id=p.id, vector=unit, payload=p.payload)
                    for p, unit in zip(points, units, strict=True)
                ]
                for start in range(0, len(dense_only), _UPSERT_BATCH):
                    batch = dense_only[start : start + _UPSERT_BATCH]
                    client.upsert(legacy, points=batch, wait=True)

        await self._run(work)

    async def query(
        self,
        *,
        bot_id: str,
        embedder_id: str,
        dimension: int,
        vector: Sequence[float],
        keywords: SparseTerms,
        source_ids: frozenset[str],
        limit: int,
        score_threshold: float | None,
    ) -> Found:
        """The `limit` chunks of `source_ids` that best match the question (its embedding
        `vector` and its `keywords`), best first; only those at least `score_threshold` close
        by embedding. Chunks of other sources (removed ones not yet swept) are skipped."""
        if not source_ids or limit < 1:
            return Found([], HYBRID)
        name = collection_name(bot_id, embedder_id, dimension)
        legacy = legacy_collection_name(bot_id, embedder_id, dimension)
        unit = np.asarray(_unit(vector), dtype=np.float32)

        def work(client: QdrantClient) -> Found:
            if client.collection_exists(legacy):  # its chunks are passages already
                hits = self._nearest(client, legacy, None, unit, source_ids, limit, score_threshold)
                return Found([_hit(p) for p in hits], NOT_REINDEXED)
            if not client.collection_exists(name):
                return Found([], HYBRID)
            fetch = limit * _CHUNKS_PER_PASSAGE
            if not keywords:
                found = self._nearest(
                    client, name, DENSE, unit, source_ids, fetch, score_threshold, payload=_PLACE
                )
                ranked, search = [_hit(p) for p in found], NO_KEYWORDS
            else:
                pool = self._nearest(
                    client,
                    name,
                    DENSE,
                    unit,
                    source_ids,
                    max(fetch, _POOL),
                    None if score_threshold is None else score_threshold - KEYWORD_SLACK,
                    payload=_PLACE,
                    over=1,
                )
                # The keyword vectors of the candidates kept only (the search above may have
                # looked at many more, of other sources).
                held = client.retrieve(
                    name, ids=[p.id for p in pool], with_payload=False, with_vectors=[KEYWORDS]
                )
                sparse = {r.id: _keywords_of(r.vector) for r in held}
                blended = _blended(pool, sparse, keywords, fetch, score_threshold)
                ranked = [_hit(p) for p in blended]
                search = HYBRID
            return Found(self._widened(client, name, ranked, limit), search)

        return await self._run(work)

    def _widened(self, client: QdrantClient, name: str, ranked: list[Hit], limit: int) -> list[Hit]:
        """The best `limit` passages: each found chunk with its neighbours (of its source, up
        to `REACH` on each side, `WINDOW_CHARS` in all); chunks already in a better passage
        add nothing, and passages that meet are one."""
        if not ranked:
            return []
        wanted = {
            point_id(hit.source_id, position)
            for hit in _likely_passages(ranked, limit)
            for position in range(hit.chunk.position - REACH, hit.chunk.position + REACH + 1)
            if position >= 0
        }
        stored = client.retrieve(name, ids=sorted(wanted), with_payload=True, with_vectors=False)
        chunks = {}
        for record in stored:
            payload = record.payload or {}
            chunks[(str(payload.get("source_id")), int(payload.get("position", -1)))] = _chunk(
                payload
            )
        return _windows(ranked, chunks, limit)

    def _nearest(
        self,
        client: QdrantClient,
        name: str,
        using: str | None,
        unit: np.ndarray[Any, Any],
        source_ids: frozenset[str],
        limit: int,
        score_threshold: float | None,
        *,
        payload: bool | list[str] = True,
        over: int = 4,
    ) -> list[Any]:
        """The points of `source_ids` nearest by embedding: fetched `over` times over and
        filtered here, a payload filter only when the sources are a small part of the
        collection."""
        query = self._dense_query(unit)
        fetch = limit * over
        while True:
            points = client.query_points(
                name,
                query=query,
                using=using,
                limit=fetch,
                score_threshold=score_threshold,
                with_payload=payload,
            ).points
            kept = [p for p in points if (p.payload or {}).get("source_id") in source_ids]
            if len(kept) >= limit or len(points) < fetch:
                return kept[:limit]
            if fetch >= _MAX_UNFILTERED_FETCH:
                break
            fetch = min(fetch * 4, _MAX_UNFILTERED_FETCH)
        return client.query_points(
            name,
            query=query,
            using=using,
            query_filter=_only(source_ids),
            limit=limit,
            score_threshold=score_threshold,
            with_payload=payload,
        ).points

    def _dense_query(self, unit: np.ndarray[Any, Any]) -> Any:
        """The query for `query_points`.

        Embedded Qdrant turns a list (or an array it is given, which the client makes a list)
        into a float64 vector, so numpy converts the whole float32 matrix on every query: 2.6 ms
        of a 3 ms search at 10k x 384. A float32 array inside an unvalidated `NearestQuery` goes
        through to `np.dot` as it is (0.1 ms, the same scores). A server gets JSON: a list.
        """
        from qdrant_client import models

        if self._remote:
            return unit.tolist()
        return models.NearestQuery.model_construct(nearest=unit)

    async def delete_source(
        self, *, bot_id: str, embedder_id: str, dimension: int, source_id: str
    ) -> None:
        """Remove every chunk of one source."""
        names = _names(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            match = models.FieldCondition(key="source_id", match=models.MatchValue(value=source_id))
            for name in names:
                if client.collection_exists(name):
                    client.delete(
                        name,
                        points_selector=models.FilterSelector(filter=models.Filter(must=[match])),
                        wait=True,
                    )

        await self._run(work)

    async def trim_source(
        self,
        *,
        bot_id: str,
        embedder_id: str,
        dimension: int,
        source_id: str,
        keep: int,
        legacy_too: bool = True,
    ) -> None:
        """Remove a source's chunks at positions `keep` and beyond."""
        names = _names(bot_id, embedder_id, dimension)[: 2 if legacy_too else 1]

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            beyond = models.Filter(
                must=[
                    models.FieldCondition(
                        key="source_id", match=models.MatchValue(value=source_id)
                    ),
                    models.FieldCondition(key="position", range=models.Range(gte=keep)),
                ]
            )
            for name in names:
                if client.collection_exists(name):
                    client.delete(
                        name, points_selector=models.FilterSelector(filter=beyond), wait=True
                    )

        await self._run(work)

    async def source_ids(self, *, bot_id: str, embedder_id: str, dimension: int) -> set[str]:
        """The ids of the sources present, e.g. to sweep those a bot no longer references."""
        stored = await self._scroll(
            _names(bot_id, embedder_id, dimension), with_payload=["source_id"]
        )
        return {str(payload.get("source_id")) for payload in stored}

    async def stored_chunks(
        self, *, bot_id: str, embedder_id: str, dimension: int, legacy: bool
    ) -> dict[str, list[Chunk]]:
        """Every stored chunk of the bot (of its legacy collection, or its hybrid one), by
        source, in reading order: what a re-index cuts again."""
        name = (legacy_collection_name if legacy else collection_name)(
            bot_id, embedder_id, dimension
        )
        found: dict[str, list[Chunk]] = {}
        for payload in await self._scroll((name,), with_payload=True):
            found.setdefault(str(payload.get("source_id")), []).append(_chunk(payload))
        return {
            source: sorted(chunks, key=lambda c: c.position) for source, chunks in found.items()
        }

    async def _scroll(
        self, names: Sequence[str], *, with_payload: bool | list[str]
    ) -> list[dict[str, Any]]:
        def work(client: QdrantClient) -> list[dict[str, Any]]:
            payloads: list[dict[str, Any]] = []
            for name in names:
                if not client.collection_exists(name):
                    continue
                offset: Any = None
                while True:
                    records, offset = client.scroll(
                        name, limit=_SCROLL_PAGE, offset=offset, with_payload=with_payload
                    )
                    payloads += (r.payload or {} for r in records)
                    if offset is None:
                        break
            return payloads

        return await self._run(work)

    async def counts(
        self, *, bot_id: str, embedder_id: str, dimension: int, source_ids: Sequence[str]
    ) -> dict[str, int]:
        """The number of chunks stored for each of `source_ids` (0 when absent), as the
        collection that answers holds them (a legacy one until its re-index is done)."""
        legacy = legacy_collection_name(bot_id, embedder_id, dimension)
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> dict[str, int]:
            from qdrant_client import models

            answering = legacy if client.collection_exists(legacy) else name
            if not client.collection_exists(answering):
                return dict.fromkeys(source_ids, 0)
            found: dict[str, int] = {}
            for source in source_ids:
                match = models.FieldCondition(
                    key="source_id", match=models.MatchValue(value=source)
                )
                found[source] = client.count(
                    answering, count_filter=models.Filter(must=[match]), exact=True
                ).count
            return found

        return await self._run(work)

    async def has_legacy(self, *, bot_id: str, embedder_id: str, dimension: int) -> bool:
        """Whether the bot still has a collection made before keywords."""
        name = legacy_collection_name(bot_id, embedder_id, dimension)
        return await self._run(lambda client: client.collection_exists(name))

    async def drop_legacy(self, *, bot_id: str, embedder_id: str, dimension: int) -> None:
        """Delete the bot's collection made before keywords (its hybrid one now answers)."""
        name = legacy_collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            if client.collection_exists(name):
                client.delete_collection(name)

        await self._run(work)

    async def bots(self) -> set[str]:
        """The ids of the bots that have collections here (numeric ids only)."""

        def work(client: QdrantClient) -> set[str]:
            names = (c.name for c in client.get_collections().collections)
            return {match.group(1) for match in map(_BOT_COLLECTION.match, names) if match}

        return await self._run(work)

    async def has_bot(self, *, bot_id: str) -> bool:
        """Whether any collection of the bot exists (any embedder)."""
        prefix = _bot_prefix(bot_id)

        def work(client: QdrantClient) -> bool:
            return any(c.name.startswith(prefix) for c in client.get_collections().collections)

        return await self._run(work)

    async def collection_count(self) -> int:
        """How many collections the store holds: a cheap call that shows it answers (/readyz)."""
        return await self._run(lambda client: len(client.get_collections().collections))

    async def drop_bot(self, *, bot_id: str) -> None:
        """Delete every collection of a bot, whatever its embedder."""
        prefix = _bot_prefix(bot_id)

        def work(client: QdrantClient) -> None:
            for collection in client.get_collections().collections:
                if collection.name.startswith(prefix):
                    client.delete_collection(collection.name)

        await self._run(work)

    async def _run(self, work: Callable[[QdrantClient], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=4 if self._remote else 1, thread_name_prefix="qdrant"
            )
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: work(self._connected())
        )

    def _connected(self) -> QdrantClient:
        with self._open_lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    def _open(self) -> QdrantClient:
        from qdrant_client import QdrantClient

        if self.location == ":memory:":
            return QdrantClient(":memory:")
        if self._remote:
            return QdrantClient(url=self.location)
        try:
            return QdrantClient(path=self.location)
        except RuntimeError as exc:
            if "already accessed by another instance" not in str(exc):
                raise
            raise KnowledgeStoreError(
                f"the knowledge store at {self.location} is used by another process (a running "
                "`serve`?): stop it, or go through the running service"
            ) from None

    def _close_client(self) -> None:
        with self._open_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
