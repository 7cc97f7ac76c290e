"""The vector store: bot knowledge chunks in Qdrant, one collection per (bot, embedder, dimension).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from runtime.knowledge.chunking import Chunk

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


class KnowledgeStoreError(Exception):
    """The vector store cannot be used (e.g. its folder is held by another process)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """A chunk found by a query; `score` is the cosine similarity (a dot product of unit
    vectors)."""

    score: float
    chunk: Chunk
    source_id: str


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _bot_prefix(bot_id: str) -> str:
    # No "-" in the bot part, so that the prefix of bot "1" never matches bot "1-2"'s collections.
    return f"bot-{_safe(bot_id).replace('-', '_')}-"


def collection_name(bot_id: str, embedder_id: str, dimension: int) -> str:
    """The collection holding one bot's chunks as embedded by one embedder."""
    return f"{_bot_prefix(bot_id)}{_safe(embedder_id)}-{dimension}"


def _unit(vector: Sequence[float]) -> list[float]:
    """The vector scaled to length 1 (collections use DOT, which is the cosine of unit
    vectors)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def point_id(source_id: str, position: int) -> str:
    return str(uuid.uuid5(POINT_NAMESPACE, f"{source_id}:{position}"))


def _hit(point: Any) -> Hit:
    payload = point.payload or {}
    chunk = Chunk(
        text=payload.get("text", ""),
        source_name=payload.get("source_name", ""),
        position=int(payload.get("position", 0)),
        page=payload.get("page"),
        heading=payload.get("heading"),
    )
    return Hit(score=float(point.score), chunk=chunk, source_id=str(payload.get("source_id")))


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
    ) -> None:
        """Store a source's chunks with their vectors; the same source again overwrites them."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            if not client.collection_exists(name):
                client.create_collection(
                    name,
                    vectors_config=models.VectorParams(
                        # Embedders give unit vectors, so a dot product is the cosine; and
                        # embedded Qdrant re-normalises every stored vector per COSINE query.
                        size=dimension,
                        distance=models.Distance.DOT,
                    ),
                )
            points = [
                models.PointStruct(
                    id=point_id(source_id, chunk.position),
                    vector=_unit(vector),
                    payload={
                        "source_id": source_id,
                        "source_name": chunk.source_name,
                        "position": chunk.position,
                        "page": chunk.page,
                        "heading": chunk.heading,
                        "text": chunk.text,
                    },
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ]
            for start in range(0, len(points), _UPSERT_BATCH):
                client.upsert(name, points=points[start : start + _UPSERT_BATCH], wait=True)

        await self._run(work)

    async def query(
        self,
        *,
        bot_id: str,
        embedder_id: str,
        dimension: int,
        vector: Sequence[float],
        source_ids: frozenset[str],
        limit: int,
        score_threshold: float | None,
    ) -> list[Hit]:
        """The `limit` chunks of `source_ids` nearest to `vector`, best first.

        Chunks of other sources (removed ones not yet swept) are skipped.
        """
        if not source_ids or limit < 1:
            return []
        name = collection_name(bot_id, embedder_id, dimension)
        unit = np.asarray(_unit(vector), dtype=np.float32)

        def work(client: QdrantClient) -> list[Hit]:
            from qdrant_client import models

            if not client.collection_exists(name):
                return []
            query = self._nearest(unit)
            fetch = limit * 4
            while True:
                points = client.query_points(
                    name, query=query, limit=fetch, score_threshold=score_threshold
                ).points
                hits = [hit for hit in map(_hit, points) if hit.source_id in source_ids]
                if len(hits) >= limit or len(points) < fetch:
                    return hits[:limit]
                if fetch >= _MAX_UNFILTERED_FETCH:
                    break
                fetch = min(fetch * 4, _MAX_UNFILTERED_FETCH)
            only_sources = models.Filter(
                must=[
                    models.FieldCondition(
                        key="source_id", match=models.MatchAny(any=sorted(source_ids))
                    )
                ]
            )
            points = client.query_points(
                name,
                query=query,
                query_filter=only_sources,
                limit=limit,
                score_threshold=score_threshold,
            ).points
            return [_hit(point) for point in points]

        return await self._run(work)

    def _nearest(self, unit: np.ndarray[Any, Any]) -> Any:
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
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            if not client.collection_exists(name):
                return
            match = models.FieldCondition(key="source_id", match=models.MatchValue(value=source_id))
            client.delete(
                name,
                points_selector=models.FilterSelector(filter=models.Filter(must=[match])),
                wait=True,
            )

        await self._run(work)

    async def trim_source(
        self, *, bot_id: str, embedder_id: str, dimension: int, source_id: str, keep: int
    ) -> None:
        """Remove a source's chunks at positions `keep` and beyond."""
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> None:
            from qdrant_client import models

            if not client.collection_exists(name):
                return
            beyond = models.Filter(
                must=[
                    models.FieldCondition(
                        key="source_id", match=models.MatchValue(value=source_id)
                    ),
                    models.FieldCondition(key="position", range=models.Range(gte=keep)),
                ]
            )
            client.delete(name, points_selector=models.FilterSelector(filter=beyond), wait=True)

        await self._run(work)

    async def source_ids(self, *, bot_id: str, embedder_id: str, dimension: int) -> set[str]:
        """The ids of the sources present, e.g. to sweep those a bot no longer references."""
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> set[str]:
            found: set[str] = set()
            if not client.collection_exists(name):
                return found
            offset: Any = None
            while True:
                records, offset = client.scroll(
                    name, limit=_SCROLL_PAGE, offset=offset, with_payload=["source_id"]
                )
                found.update(str((r.payload or {}).get("source_id")) for r in records)
                if offset is None:
                    return found

        return await self._run(work)

    async def counts(
        self, *, bot_id: str, embedder_id: str, dimension: int, source_ids: Sequence[str]
    ) -> dict[str, int]:
        """The number of chunks stored for each of `source_ids` (0 when absent)."""
        name = collection_name(bot_id, embedder_id, dimension)

        def work(client: QdrantClient) -> dict[str, int]:
            from qdrant_client import models

            if not client.collection_exists(name):
                return dict.fromkeys(source_ids, 0)
            found: dict[str, int] = {}
            for source in source_ids:
                match = models.FieldCondition(
                    key="source_id", match=models.MatchValue(value=source)
                )
                found[source] = client.count(
                    name, count_filter=models.Filter(must=[match]), exact=True
                ).count
            return found

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
