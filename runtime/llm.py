"""The LLM gateway: every model call goes through here, with one retry loop and a deadline.

Real models go through litellm (imported on first use: it costs ~3 s). `offline` is answered here
without litellm or network. litellm's and the openai SDK's own retries are turned off so that this
loop is the only one and the deadline holds.

Tool calling: `complete(..., tools=[...])` offers OpenAI tool definitions to the model, and the
answer carries the model's `ToolCall`s (arguments as the raw JSON string: the caller parses and
validates them, so that malformed arguments are reported to the user rather than raised here).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Literal, TypeVar

from builders.spec import OFFLINE_MODEL
from runtime.memory import freeze_long_lived

logger = logging.getLogger(__name__)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices at import

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
# The provider's moderation model (OpenAI's, or STUDIO_LLM_API_BASE's server for `openai/`).
MODERATION_MODEL = "openai/omni-moderation-latest"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asked to call. `arguments` is the JSON string the model produced, kept
    verbatim even when malformed: parsing and validating it is the caller's job."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message to the model. In a tool-call loop, the model's own turn carries the
    `tool_calls` it asked for, and each result answers one of them (`role="tool"`,
    `tool_call_id`)."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The message as the OpenAI chat format has it."""
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True, slots=True)
class LlmAnswer:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None  # None: the price of this model is unknown
    tool_calls: tuple[ToolCall, ...] = ()  # in the order the model gave them


@dataclass(frozen=True, slots=True)
class Moderation:
    """A moderation verdict; `categories` are the ones the provider flagged, sorted."""

    flagged: bool
    categories: tuple[str, ...] = ()


class LlmError(Exception):
    """The model could not answer. `kind`: timeout, rate_limit, provider, auth, bad_request."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __str__(self) -> str:
        return f"{self.kind}: {self.args[0]}"


# Where a streamed answer's text goes as it arrives (a turn's listener: the web page, a Slack
# stream, a Telegram draft). Called on the event loop; it must not block.
TextSink = Callable[[str], None]
PACE_WEIGHT = 0.2  # how much a model's latest answer moves its pace (`answers_within`)


class _BrokenStream(Exception):
    """A stream failed after some of its text was shown: never retried (the person would see
    the answer twice); the cause says why it failed."""


def words(text: str) -> list[str]:
    """`text` in the pieces a word-by-word stream shows (each word with the space after it)."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    attempt_timeout_s: float = 30.0
    deadline_s: float = 60.0
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


def _retry_after(exc: BaseException) -> float | None:
    """The provider's Retry-After: litellm keeps the response's headers apart from the
    exception's own `response` (which it rebuilds without them for rate limits)."""
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if not headers:
            continue
        try:
            return float(headers.get("retry-after"))
        except (TypeError, ValueError):
            continue
    return None


def _classify(exc: BaseException, litellm: ModuleType) -> tuple[str, bool]:
    """(kind, retryable) for an exception raised by a litellm call."""
    import openai

    if isinstance(exc, _BrokenStream) and exc.__cause__ is not None:
        return _classify(exc.__cause__, litellm)[0], False

    if isinstance(exc, asyncio.TimeoutError | litellm.Timeout | openai.APITimeoutError):
        return "timeout", True
    if isinstance(exc, litellm.RateLimitError):
        return "rate_limit", True
    if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
        return "auth", False
    if isinstance(exc, litellm.APIConnectionError | openai.APIConnectionError):
        return "provider", True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        if status == 429:  # the openai SDK's own error (moderation): not mapped by litellm
            return "rate_limit", True
        if status in _RETRYABLE_STATUS:
            return "provider", True
        if status in (401, 403):  # litellm maps a 403 of an OpenAI-compatible server to APIError
            return "auth", False
        if 400 <= status < 500:
            return "bad_request", False
    return "provider", False


class LlmGateway:
    def __init__(
        self,
        *,
        api_base: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api_base = api_base
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._litellm: ModuleType | None = None
        self._moderation_clients: dict[tuple[str | None, str], Any] = {}
        self._pace: dict[str, float] = {}  # model -> how long its answers take (moving mean)

    async def _lib(self) -> ModuleType:
        """litellm, imported on first use in a thread: the import takes seconds and must not
        stall the event loop."""
        if self._litellm is None:
            self._litellm = await asyncio.to_thread(import_litellm)
        return self._litellm

    async def warm(self) -> None:
        """Import litellm now rather than at the first model call (timing-sensitive callers)."""
        await self._lib()

    def call_options(self, model: str) -> dict[str, Any]:
        """Where `model`'s server is, for any kind of call: `api_base` and a key for `openai/`
        models when the gateway has an api base; nothing otherwise (litellm's own defaults)."""
        options: dict[str, Any] = {}
        if model.startswith("openai/") and self.api_base:
            options["api_base"] = self.api_base
            # OpenAI-compatible servers (vLLM, Ollama, llama.cpp) usually take any key.
            options["api_key"] = os.environ.get("OPENAI_API_KEY") or "none"
        return options

    def _completion_options(self, model: str, temperature: float) -> dict[str, Any]:
        """A chat completion's options: one try each (the gateway retries), unknown parameters
        dropped for providers without them, and where `model`'s server is."""
        options = self.call_options(model)
        options.update(temperature=temperature, num_retries=0, max_retries=0, drop_params=True)
        return options

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        temperature: float,
        fallback: str,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Literal["auto", "none"] = "auto",
        stream: TextSink | None = None,
    ) -> LlmAnswer:
        """The model's answer, or `LlmError` after retries. `fallback` is `offline`'s answer.

        `tools` (OpenAI tool definitions) are offered with `tool_choice` ("auto": the answer then
        has text, tool calls or both; "none": the model must answer in text, though the
        conversation holds tool calls). `offline` ignores them and answers `fallback`.

        `stream` (not with tools): the answer's text also goes there as it arrives (`offline`'s
        word by word). A stream that fails before its first text is retried like any call; one
        that fails after it is not (`LlmError`: the caller answers with its fallback instead).
        """
        if model == OFFLINE_MODEL:
            if stream is not None:
                for piece in words(fallback):
                    stream(piece)
            return LlmAnswer(
                text=fallback, model=model, prompt_tokens=0, completion_tokens=0, cost_usd=0.0
            )
        started = time.monotonic()
        if stream is not None and not tools:
            answer = await self._streamed(model, messages, temperature, stream)
        else:
            answer = await self._with_retries(model, messages, temperature, tools, tool_choice)
        self._timed(model, time.monotonic() - started)
        return answer

    def _timed(self, model: str, seconds: float) -> None:
        known = self._pace.get(model)
        self._pace[model] = seconds if known is None else known + PACE_WEIGHT * (seconds - known)

    def answers_within(self, model: str, seconds: float) -> bool:
        """Whether `model`'s answers, as a rule, come whole in less than `seconds` (False until
        it answered once here). A channel whose preview shows nothing for as long does not ask
        for a stream of them: litellm's stream costs about 2.5 times the CPU of a whole answer,
        for a preview that would never show."""
        pace = self._pace.get(model)
        return pace is not None and pace < seconds

    async def _streamed(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        temperature: float,
        sink: TextSink,
    ) -> LlmAnswer:
        litellm = await self._lib()
        payload = [message.payload() for message in messages]
        options = self._completion_options(model, temperature)
        options.update(stream=True, stream_options={"include_usage": True})

        async def attempt(limit_s: float) -> LlmAnswer:
            chunks = []
            pieces: list[str] = []
            usage = None
            response = await litellm.acompletion(
                model=model, messages=payload, timeout=limit_s, **options
            )
            try:
                async for chunk in response:
                    chunks.append(chunk)
                    usage = getattr(chunk, "usage", None) or usage
                    text = chunk.choices[0].delta.content if chunk.choices else None
                    if text:
                        sink(text)
                        pieces.append(text)
                        # whoever shows the text runs now, not after the chunks already read
                        await asyncio.sleep(0)
            except Exception as exc:
                if pieces:
                    raise _BrokenStream(str(exc)) from exc
                raise
            if usage is None:  # the provider did not count: litellm rebuilds and counts
                built = litellm.stream_chunk_builder(chunks, messages=payload)
                answer = self._answer(model, built)
                return replace(answer, cost_usd=_cost(litellm, built, model))
            return LlmAnswer(
                text="".join(pieces),
                model=model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cost_usd=_usage_cost(litellm, usage, model),
            )

        # The whole stream within the deadline: one attempt may take longer than the timeout
        # of a call that answers at once (the text shows as it comes meanwhile).
        return await self._retrying(model, litellm, attempt, whole_deadline=True)

    async def _with_retries(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        temperature: float,
        tools: Sequence[Mapping[str, Any]] | None,
        tool_choice: str = "auto",
    ) -> LlmAnswer:
        litellm = await self._lib()
        payload = [message.payload() for message in messages]
        options = self._completion_options(model, temperature)
        if tools:
            options["tools"] = [dict(tool) for tool in tools]
            options["tool_choice"] = tool_choice

        async def attempt(limit_s: float) -> LlmAnswer:
            response = await litellm.acompletion(
                model=model, messages=payload, timeout=limit_s, **options
            )
            return self._answer(model, response)

        return await self._retrying(model, litellm, attempt)

    async def moderate(self, text: str, *, model: str = MODERATION_MODEL) -> Moderation:
        """The provider's moderation verdict on `text`, or `LlmError` after retries.

        Through `litellm.amoderation` with an OpenAI client of our own: litellm's default one
        has no timeout and retries by itself. `STUDIO_LLM_API_BASE` serves `openai/` models as
        it does for completions."""
        if model == OFFLINE_MODEL:
            raise LlmError("bad_request", "moderation needs a provider model, not offline")
        litellm = await self._lib()
        client = self._moderation_client(model)

        async def attempt(limit_s: float) -> Moderation:
            timed = client.with_options(timeout=limit_s)
            response = await litellm.amoderation(
                input=text, model=model, client=timed, num_retries=0, max_retries=0
            )
            return _moderation(response)

        return await self._retrying(model, litellm, attempt)

    def _moderation_client(self, model: str) -> Any:
        """An OpenAI client for `model`'s server, kept (its connections are reused), without
        the SDK's own retries."""
        options = self.call_options(model)
        key = options.get("api_key") or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise LlmError("auth", "moderation needs OPENAI_API_KEY (or STUDIO_LLM_API_BASE)")
        where = (options.get("api_base"), key)
        client = self._moderation_clients.get(where)
        if client is None:
            from openai import AsyncOpenAI, DefaultAsyncHttpxClient

            # Its HTTP client given, not the SDK's own: that one closes itself on whatever loop
            # runs when it is collected, which fails once its own loop is gone.
            client = AsyncOpenAI(
                api_key=key,
                base_url=where[0],
                max_retries=0,
                http_client=DefaultAsyncHttpxClient(),
            )
            self._moderation_clients[where] = client
        return client

    async def call(self, model: str, attempt: Callable[[ModuleType, float], Awaitable[_T]]) -> _T:
        """`attempt(litellm, seconds)` under this gateway's retries, backoff and deadline, for
        calls other than completions (transcription, speech): the attempt passes `seconds` to
        litellm as its timeout (and `num_retries=0`, `max_retries=0`); a failure that cannot be
        retried, or the last one, raises `LlmError` with the same kinds as completions."""
        litellm = await self._lib()

        async def attempt_with(limit_s: float) -> _T:
            return await attempt(litellm, limit_s)

        return await self._retrying(model, litellm, attempt_with)

    async def _retrying(
        self,
        model: str,
        litellm: ModuleType,
        attempt: Callable[[float], Awaitable[_T]],
        *,
        whole_deadline: bool = False,
    ) -> _T:
        """`attempt(seconds)` until it answers, under the policy's attempts, backoff and
        deadline; a failure that cannot be retried (or the last one) raises `LlmError`.
        `whole_deadline`: an attempt may run to the deadline (a stream), not only its timeout."""
        policy = self.policy
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            remaining = policy.deadline_s - (time.monotonic() - started)
            timeout = max(0.05, min(policy.attempt_timeout_s, remaining))
            guard = max(timeout, remaining) if whole_deadline else timeout
            try:
                # A guard over the library's own timeout; asyncio.timeout spawns no task.
                async with asyncio.timeout(guard + 1.0):
                    return await attempt(timeout)
            except Exception as exc:
                kind, retryable = _classify(exc, litellm)
                message = _short(exc)
                elapsed = time.monotonic() - started
                delay = min(policy.max_backoff_s, policy.backoff_s * 2 ** (tries - 1))
                delay *= 0.8 + 0.4 * random.random()
                # The server's Retry-After is a floor: jitter must not bring the retry earlier.
                delay = max(delay, _retry_after(exc) or 0.0)
                if (
                    not retryable
                    or tries >= policy.attempts
                    or elapsed + delay >= policy.deadline_s
                ):
                    logger.warning(
                        "llm call failed", extra={"model": model, "kind": kind, "attempts": tries}
                    )
                    raise LlmError(kind, message) from None
                await self._sleep(delay)

    @staticmethod
    def _answer(model: str, response: Any) -> LlmAnswer:
        choice = response.choices[0]
        text = choice.message.content or ""
        calls = getattr(choice.message, "tool_calls", None) or ()
        usage = getattr(response, "usage", None)
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        return LlmAnswer(
            text=text,
            model=model,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            tool_calls=tuple(_tool_call(call, n) for n, call in enumerate(calls, start=1)),
        )


def import_litellm() -> ModuleType:
    """litellm, configured to be quiet (call it from a thread: the import takes seconds)."""
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)  # it logs every call at INFO
    freeze_long_lived(after="litellm")  # its import made most of the lasting objects
    return litellm


async def stop_litellm_logging(*, grace_s: float = 5.0) -> None:
    """End litellm's logging worker on this event loop (shutdown).

    litellm queues a logging callback per call on a worker task of the running loop. Left
    running, the task outlives the service: the loop's own shutdown then cancels it, and its
    cancellation runs the queued callbacks, which can wait forever (or, with a new loop in the
    same process, the queue is carried over to it). Let the queue empty, then stop the worker.
    """
    import sys

    if "litellm" not in sys.modules:
        return  # never imported: nothing was queued
    from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), grace_s)
    except TimeoutError:
        logger.warning("litellm's logging callbacks did not finish within %.0f s", grace_s)
    await GLOBAL_LOGGING_WORKER.stop()


def _tool_call(call: Any, n: int) -> ToolCall:
    """A `ToolCall` from one of litellm's (`.id`, `.function.name`, `.function.arguments`).

    Odd providers give arguments as None or an object, or no id: arguments become a JSON string
    (`{}` when absent), and a missing id becomes `call_<n>` (1-based position in the answer).
    A string is kept verbatim, malformed or not.
    """
    function = getattr(call, "function", None)
    name = getattr(function, "name", None)
    arguments = getattr(function, "arguments", None)
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = "{}"
    elif not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False, default=str)
    return ToolCall(
        id=str(getattr(call, "id", None) or f"call_{n}"),
        name=str(name or ""),
        arguments=arguments,
    )


def _moderation(response: Any) -> Moderation:
    """A `Moderation` from litellm's response: flagged when any result is."""
    flagged = False
    categories: set[str] = set()
    for result in getattr(response, "results", None) or ():
        flagged = flagged or bool(getattr(result, "flagged", False))
        marked = getattr(result, "categories", None) or {}
        categories.update(name for name, on in marked.items() if on)
    return Moderation(flagged=flagged, categories=tuple(sorted(categories)))


def _cost(litellm: ModuleType, response: Any, model: str) -> float | None:
    """What a streamed answer cost (litellm prices the rebuilt response); None: unknown."""
    try:
        return float(litellm.completion_cost(completion_response=response, model=model))
    except Exception:  # a model litellm has no price for: unknown, never 0
        return None


def _usage_cost(litellm: ModuleType, usage: Any, model: str) -> float | None:
    """What a streamed answer cost from its reported usage: the price litellm put on it as it
    ended the stream, or litellm's price per token; None: unknown."""
    priced = getattr(usage, "cost", None)
    if isinstance(priced, int | float):
        return float(priced)
    try:
        prompt, completion = litellm.cost_per_token(
            model=model,
            prompt_tokens=usage.prompt_tokens or 0,
            completion_tokens=usage.completion_tokens or 0,
        )
    except Exception:  # a model litellm has no price for: unknown, never 0
        return None
    return float(prompt + completion)


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    return first[:300]
