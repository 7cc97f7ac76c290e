"""The embedders: the built-in int8 MiniLM on real sentences, and litellm against a fake server."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runtime.knowledge.embedder import (
    EmbeddingError,
    LiteLlmEmbedder,
    OnnxMiniLmEmbedder,
    make_embedder,
)
from runtime.llm import import_litellm
from tests.fakes.server import ServedFake


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))  # the vectors are normalised


@pytest.fixture(scope="module")
def minilm() -> OnnxMiniLmEmbedder:
    """One loaded model for the module: it holds no event loop, so any test's loop may use it."""
    return OnnxMiniLmEmbedder()


async def test_vectors_have_384_dimensions_and_unit_norm(minilm: OnnxMiniLmEmbedder) -> None:
    assert await minilm.ensure_ready() == 384
    vectors = await minilm.embed(["Hello there.", "", "Ünïcödé and emoji 🎉 work too."])

    assert [len(v) for v in vectors] == [384, 384, 384]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert await minilm.embed([]) == []


async def test_embeddings_are_deterministic(minilm: OnnxMiniLmEmbedder) -> None:
    texts = ["Our shop opens at nine.", "Returns are accepted within 30 days."]

    assert np.allclose(await minilm.embed(texts), await minilm.embed(texts), atol=1e-6)


async def test_related_sentences_are_closer_than_unrelated_ones(
    minilm: OnnxMiniLmEmbedder,
) -> None:
    question, policy, weather, returns, pasta = await minilm.embed(
        [
            "How do I get a refund?",
            "refund policy",
            "The weather is nice",
            "You can return an order and get your money back within 30 days.",
            "Boil the pasta for ten minutes in salted water.",
        ]
    )

    assert cosine(question, policy) > cosine(question, weather) + 0.4
    assert cosine(question, returns) > cosine(question, pasta) + 0.3
    assert cosine(policy, returns) > cosine(policy, pasta)


async def test_a_batch_larger_than_the_model_batch_keeps_order(
    minilm: OnnxMiniLmEmbedder,
) -> None:
    texts = [f"Sentence {n} is about {('cats', 'taxes', 'rockets')[n % 3]}." for n in range(70)]

    vectors = await minilm.embed(texts)

    assert len(vectors) == 70
    for n in (0, 31, 32, 33, 64, 69):  # either side of the 32-text batch edges
        (alone,) = await minilm.embed([texts[n]])
        assert cosine(vectors[n], alone) > 0.999


async def test_text_beyond_256_tokens_is_truncated(minilm: OnnxMiniLmEmbedder) -> None:
    long = " ".join(f"word{n}" for n in range(600))  # well over 256 tokens
    longer = long + " and a tail about something else entirely, which is cut off"

    first, second = await minilm.embed([long, longer])

    assert cosine(first, second) > 0.9999


async def test_concurrent_first_calls_load_the_model_once() -> None:
    class Counting(OnnxMiniLmEmbedder):
        loads = 0

        def _load(self) -> Any:
            Counting.loads += 1
            return super()._load()

    embedder = Counting()

    results = await asyncio.gather(*(embedder.embed([f"text {n}"]) for n in range(5)))

    assert Counting.loads == 1
    assert all(len(vectors) == 1 for vectors in results)


async def test_embedding_runs_off_the_event_loop(minilm: OnnxMiniLmEmbedder) -> None:
    await minilm.ensure_ready()
    texts = [f"A fairly ordinary sentence, number {n}, about the weather." for n in range(256)]
    ticks: list[float] = []
    embedding = asyncio.create_task(minilm.embed(texts))

    while not embedding.done():
        ticks.append(time.monotonic())
        await asyncio.sleep(0.005)

    assert len(await embedding) == 256
    assert len(ticks) >= 10  # the loop kept serving while ~0.5 s of inference ran
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.25


def test_make_embedder_picks_the_builtin_or_litellm() -> None:
    assert isinstance(make_embedder(model=None, api_base=None), OnnxMiniLmEmbedder)
    chosen = make_embedder(model="openai/text-embedding-3-small", api_base=None)
    assert isinstance(chosen, LiteLlmEmbedder)
    assert chosen.id == "litellm-openai-text-embedding-3-small"


# --- litellm, against a fake OpenAI-compatible /v1/embeddings ---


@dataclass(frozen=True, slots=True)
class EmbeddingCall:
    body: dict[str, Any]
    authorization: str | None


class FakeEmbeddings(ServedFake):
    """`POST /v1/embeddings`: text -> the unnormalised vector (len, 3, 4, 0, ...) of `dimension`;
    `fail(status)` queues an error answer."""

    name = "embeddings"

    def __init__(self, dimension: int = 8) -> None:
        self.dimension = dimension
        self.calls: list[EmbeddingCall] = []
        self.failures: deque[int] = deque()
        self.app = Starlette(routes=[Route("/v1/embeddings", self._embed, methods=["POST"])])

    def fail(self, status: int) -> None:
        self.failures.append(status)

    def raw(self, text: str) -> list[float]:
        return [float(len(text)), 3.0, 4.0] + [0.0] * (self.dimension - 3)

    async def _embed(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.calls.append(EmbeddingCall(body, request.headers.get("authorization")))
        if self.failures:
            status = self.failures.popleft()
            error = {"message": f"scripted failure {status}", "type": "server_error"}
            return JSONResponse({"error": error}, status_code=status)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(texts):
            vector: Any = self.raw(text)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return JSONResponse(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )


@pytest.fixture(scope="module")
def fake_embeddings() -> Iterator[FakeEmbeddings]:
    import_litellm()  # pay the ~3 s import in setup, once
    with FakeEmbeddings() as fake:
        yield fake


@pytest.fixture
def fake(fake_embeddings: FakeEmbeddings, monkeypatch: pytest.MonkeyPatch) -> FakeEmbeddings:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    fake_embeddings.calls.clear()
    fake_embeddings.failures.clear()
    return fake_embeddings


def litellm_embedder(fake: FakeEmbeddings) -> LiteLlmEmbedder:
    return LiteLlmEmbedder(
        model="openai/fake-embed", api_base=f"http://127.0.0.1:{fake.port}/v1", timeout_s=5
    )


async def test_litellm_vectors_are_normalised_and_reach_the_api_base(
    fake: FakeEmbeddings,
) -> None:
    embedder = litellm_embedder(fake)

    vectors = await embedder.embed(["hi", "hello"])

    assert embedder.id == "litellm-openai-fake-embed"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    for text, vector in zip(["hi", "hello"], vectors, strict=True):
        raw = np.array(fake.raw(text))
        assert np.allclose(vector, raw / np.linalg.norm(raw), atol=1e-6)
    (call,) = fake.calls
    assert call.body["model"] == "fake-embed"
    assert call.body["input"] == ["hi", "hello"]
    assert call.authorization == "Bearer none"


async def test_litellm_dimension_is_probed_once(fake: FakeEmbeddings) -> None:
    embedder = litellm_embedder(fake)

    dimensions = await asyncio.gather(embedder.ensure_ready(), embedder.ensure_ready())

    assert dimensions == [8, 8]
    assert len(fake.calls) == 1


async def test_litellm_batches_long_inputs_in_order(fake: FakeEmbeddings) -> None:
    texts = ["x" * n for n in range(1, 71)]

    vectors = await litellm_embedder(fake).embed(texts)

    assert [len(call.body["input"]) for call in fake.calls] == [64, 6]
    expected = np.array([fake.raw(text) for text in texts])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(vectors, expected, atol=1e-6)


@pytest.mark.parametrize("status", [500, 401, 400])
async def test_litellm_error_status_is_an_embedding_error(
    fake: FakeEmbeddings, status: int
) -> None:
    fake.fail(status)

    with pytest.raises(EmbeddingError, match="the embedding model openai/fake-embed failed"):
        await litellm_embedder(fake).embed(["hi"])

    assert len(fake.calls) == 1  # no retries of litellm's or the SDK's own


async def test_litellm_dimension_change_is_an_embedding_error(fake: FakeEmbeddings) -> None:
    embedder = litellm_embedder(fake)
    await embedder.ensure_ready()
    fake.dimension = 16
    try:
        with pytest.raises(EmbeddingError, match="changed dimension: 16 instead of 8"):
            await embedder.embed(["hi"])
    finally:
        fake.dimension = 8
