"""A fake OpenAI-compatible server: records every call and pops scripted answers.

It runs uvicorn in its own thread and event loop on 127.0.0.1:0, so real clients (litellm, the
openai SDK) reach it over real HTTP from any test's event loop, and a session-scoped fake does not
clash with function-scoped test loops.

    fake = FakeLLM().start()
    fake.reply("hi", prompt_tokens=7, completion_tokens=3)   # then a 200 with that text
    fake.fail(500)                                           # then a 500 with a JSON error body
    fake.rate_limit(retry_after=2)                           # then a 429 with `Retry-After: 2`
    fake.stall(1.0)                                          # then an answer after 1 s
    fake.tool_calls(("lookup", {"q": "refunds"}))            # then an OpenAI `tool_calls` reply
    ...                                                      # empty queue: "echo: <last user text>"
    fake.flag("harassment")                                  # the next moderation: flagged
    fake.moderation_fail(500)                                # the next moderation: a 500
    fake.moderation_stall(1.0)                               # the next moderation: after 1 s
    ...                                                      # empty queue: not flagged
    fake.calls[-1].body["messages"], fake.calls[-1].authorization
    fake.stop()

Chat completions are served at `POST /v1/chat/completions` and `POST /chat/completions`; with
`stream: true` the text comes as server-sent `chat.completion.chunk`s, a word at a time
(`fake.reply(text, chunk_delay_s=0.05)` spaces them; `fake.broken_stream(text, after=2)` ends the
connection after two words, as a provider failing mid-stream does), then the usage chunk when
`stream_options.include_usage`, then `[DONE]`. Moderations
(`POST /v1/moderations`) have their own queue of verdicts. Any other path is recorded too and
answered 404, so a test can see a request that went to the wrong place.

Audio, as OpenAI serves it, pops answers from the same queue as completions (so `fail`,
`rate_limit` and `stall` script audio failures too):

    fake.transcript("hello there", duration=2.5)            # the next transcription
    fake.speech(b"RIFF....WAVE", content_type="audio/wav")  # the next speech (default: made up)
    fake.calls[-1].files["file"].data, fake.calls[-1].model, fake.calls[-1].body["input"]

`POST /v1/audio/transcriptions` takes multipart (`file`, `model`, `response_format`, ...; the
text fields are recorded in `body`, the uploads in `files`); it refuses a file whose name has no
extension OpenAI accepts (400) or over 25 MB (413). It answers `{"text": ...}` for `json` (with
`usage` of type `duration` when one is scripted), the plain text for `text`, and for
`verbose_json` the duration, language and one segment when a duration is scripted, else only
the text (a provider that measures none). Empty queue: "transcript of N bytes". `POST
/v1/audio/speech` takes JSON (`model`, `input` of 1 to 4,096 characters, `voice`,
`response_format`: mp3 by default, opus, aac, flac, wav, pcm) and answers bytes that start like
that format (Ogg Opus for `opus`, an ID3 tag for `mp3`, ...) followed by the input, with the
format's content type, unless `fake.speech(...)` scripted other bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.server import ServedFake

COMPLETION_PATHS = ("/v1/chat/completions", "/chat/completions")
MODERATION_PATHS = ("/v1/moderations", "/moderations")
TRANSCRIPTION_PATHS = ("/v1/audio/transcriptions", "/audio/transcriptions")
SPEECH_PATHS = ("/v1/audio/speech", "/audio/speech")
# The upload extensions OpenAI's transcription accepts, and its size limit (25 MB).
TRANSCRIPTION_EXTENSIONS = (
    "flac",
    "m4a",
    "mp3",
    "mp4",
    "mpeg",
    "mpga",
    "oga",
    "ogg",
    "wav",
    "webm",
)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
# Each speech format: how the fake's made-up audio starts, and its content type.
SPEECH_FORMATS: dict[str, tuple[bytes, str]] = {
    "mp3": (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    "opus": (b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead", "audio/ogg"),
    "aac": (b"\xff\xf1\x50\x80\x00\x1f\xfc", "audio/aac"),
    "flac": (b"fLaC\x00\x00\x00\x22", "audio/flac"),
    "wav": (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
    "pcm": (b"", "audio/pcm"),
}
MAX_SPEECH_INPUT = 4096
# The categories OpenAI's moderation reports, each true or false in a result.
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class Upload:
    """A file uploaded in a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received (any path), recorded before it is answered."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names, as received
    body: dict[str, Any]  # the JSON body ({} when it was not a JSON object); a form's text fields
    files: dict[str, Upload] = field(default_factory=dict)  # a multipart form's uploads

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def authorization(self) -> str | None:
        """The `Authorization` header, e.g. "Bearer sk-...", or None."""
        return self.headers.get("authorization")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call in an answer; `arguments` is the JSON string the model produced."""

    name: str
    arguments: str = "{}"


ToolCallLike = ToolCall | tuple[str, Mapping[str, Any] | str] | Mapping[str, Any]


def tool_call(spec: ToolCallLike) -> ToolCall:
    """A `ToolCall` from `ToolCall`, `(name, arguments)` or `{"name": ..., "arguments": ...}`;
    arguments given as a mapping are JSON-encoded."""
    if isinstance(spec, ToolCall):
        return spec
    if isinstance(spec, tuple):
        name, arguments = spec
    else:
        name, arguments = spec["name"], spec.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(dict(arguments))
    return ToolCall(name=str(name), arguments=arguments)


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: a reply (text and/or tool calls) or an HTTP error, after `delay_s`.

    `raw`, when given, is sent as the whole JSON body instead (with `status`), for odd replies.
    """

    text: str | None = None
    status: int = 200
    error: str = "scripted error"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 12
    completion_tokens: int = 5
    raw: dict[str, Any] | None = None
    chunk_delay_s: float = 0.0  # streamed: the pause before each word after the first
    stream_usage: bool = True  # streamed: False, no usage chunk (a provider that counts none)
    break_after: int | None = None  # streamed: the connection ends after this many words
    duration_s: float | None = None  # a transcription: the audio's duration the provider gives
    audio: bytes | None = None  # speech: these bytes instead of made-up ones
    content_type: str | None = None  # speech: this content type instead of the format's


@dataclass(frozen=True, slots=True)
class Verdict:
    """One scripted moderation answer: flagged categories, or an HTTP error, after `delay_s`."""

    categories: tuple[str, ...] = ()
    status: int = 200
    error: str = "scripted error"
    delay_s: float = 0.0

    @property
    def flagged(self) -> bool:
        return bool(self.categories)


class FakeLLM(ServedFake):
    """The fake server. Scripting and reading `calls` are thread-safe; answers are popped in
    order, one per completion request."""

    name = "LLM"

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._script: deque[Answer] = deque()
        self._verdicts: deque[Verdict] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        routes = [Route(path, self._complete, methods=["POST"]) for path in COMPLETION_PATHS]
        routes += [Route(path, self._moderate, methods=["POST"]) for path in MODERATION_PATHS]
        routes += [Route(path, self._transcribe, methods=["POST"]) for path in TRANSCRIPTION_PATHS]
        routes += [Route(path, self._speak, methods=["POST"]) for path in SPEECH_PATHS]
        routes.append(
            Route(
                "/{rest:path}",
                self._unknown,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            )
        )
        self.app = Starlette(routes=routes)

    # -- addresses ------------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:PORT`, without the `/v1` prefix."""
        if not self.port:
            raise RuntimeError("the fake LLM is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL: `http://127.0.0.1:PORT/v1`."""
        return f"{self.root_url}/v1"

    # -- what happened --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    @property
    def pending(self) -> int:
        """How many scripted answers have not been used yet."""
        with self._lock:
            return len(self._script)

    async def wait_for_calls(self, count: int, timeout_s: float = 2.0) -> list[Call]:
        """The calls once at least `count` arrived (polling, without blocking the caller's loop);
        AssertionError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            calls = self.calls
            if len(calls) >= count:
                return calls
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} call(s) to the fake LLM, got {len(calls)}")
            await asyncio.sleep(0.01)

    # -- scripting ------------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        """Queue answers, used in order by the next completion requests."""
        with self._lock:
            self._script.extend(answers)

    def reply(
        self,
        text: str,
        *,
        prompt_tokens: int = 12,
        completion_tokens: int = 5,
        delay_s: float = 0.0,
        headers: Mapping[str, str] | None = None,
        chunk_delay_s: float = 0.0,
        stream_usage: bool = True,
    ) -> None:
        """Queue a text reply with the given usage (streamed: `chunk_delay_s` between words,
        and no usage chunk without `stream_usage`)."""
        self.script(
            Answer(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                delay_s=delay_s,
                headers=dict(headers or {}),
                chunk_delay_s=chunk_delay_s,
                stream_usage=stream_usage,
            )
        )

    def broken_stream(self, text: str, *, after: int) -> None:
        """Queue a streamed reply whose connection ends after `after` words of `text`."""
        self.script(Answer(text=text, break_after=after))

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        error: str = "scripted error",
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Queue `times` HTTP errors with an OpenAI-style JSON error body."""
        answer = Answer(status=status, error=error, headers=dict(headers or {}), delay_s=delay_s)
        self.script(*[answer] * times)

    def rate_limit(self, retry_after: float | str | None = None, *, times: int = 1) -> None:
        """Queue `times` 429 answers, with a `Retry-After` header when `retry_after` is given."""
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        self.fail(429, times=times, error="rate limit reached", headers=headers)

    def stall(self, delay_s: float, *, times: int = 1, text: str = "too late") -> None:
        """Queue `times` replies that come only after `delay_s` (to trigger client timeouts)."""
        self.script(*[Answer(text=text, delay_s=delay_s)] * times)

    def tool_calls(self, *calls: ToolCallLike, text: str | None = None) -> None:
        """Queue a reply asking for tool calls, each `ToolCall`, `(name, arguments)` or
        `{"name": ..., "arguments": ...}` (arguments as a JSON string or a mapping)."""
        self.script(Answer(text=text, tool_calls=tuple(tool_call(c) for c in calls)))

    def transcript(self, text: str, *, duration: float | None = None, delay_s: float = 0.0) -> None:
        """Queue a transcription's text, with the audio's `duration` in seconds when the
        provider is to give one (in `verbose_json`, or as `usage` in `json`)."""
        self.script(Answer(text=text, duration_s=duration, delay_s=delay_s))

    def speech(
        self, audio: bytes | None = None, *, content_type: str | None = None, delay_s: float = 0.0
    ) -> None:
        """Queue a speech answer: `audio` and `content_type` as given (a server that ignores the
        asked format), or by default made up in the asked format."""
        self.script(Answer(audio=audio, content_type=content_type, delay_s=delay_s))

    def flag(self, *categories: str) -> None:
        """Queue a moderation verdict flagging `categories` (at least one, e.g. "harassment")."""
        unknown = set(categories) - set(MODERATION_CATEGORIES)
        if not categories or unknown:
            raise ValueError(f"flag one or more of {MODERATION_CATEGORIES}, not {unknown or '()'}")
        with self._lock:
            self._verdicts.append(Verdict(categories=tuple(categories)))

    def moderation_fail(
        self, status: int, *, times: int = 1, error: str = "scripted error"
    ) -> None:
        """Queue `times` moderation answers that are HTTP errors."""
        with self._lock:
            self._verdicts.extend([Verdict(status=status, error=error)] * times)

    def moderation_stall(self, delay_s: float, *, times: int = 1) -> None:
        """Queue `times` moderation verdicts (not flagged) that come only after `delay_s`."""
        with self._lock:
            self._verdicts.extend([Verdict(delay_s=delay_s)] * times)

    def reset(self) -> None:
        """Forget the recorded calls and any answers or verdicts still queued."""
        with self._lock:
            self._calls.clear()
            self._script.clear()
            self._verdicts.clear()

    # -- serving --------------------------------------------------------------------------

    async def _record(self, request: Request) -> tuple[Call, dict[str, Any] | None]:
        """Record the request; returns it and its body (None when not a JSON object)."""
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, dict) else None
        call = Call(request.method, request.url.path, dict(request.headers), body or {})
        with self._lock:
            self._calls.append(call)
        return call, body

    async def _unknown(self, request: Request) -> JSONResponse:
        call, _ = await self._record(request)
        return _error(404, f"the fake LLM does not serve {call.method} {call.path}")

    async def _complete(self, request: Request) -> Response:
        _, body = await self._record(request)
        if body is None:
            return _error(400, "expected a JSON object")
        with self._lock:
            answer = self._script.popleft() if self._script else None
        if answer is None:
            answer = Answer(text=f"echo: {_last_user_text(body.get('messages'))}")
        if answer.delay_s > 0:
            await _pause(request, answer.delay_s)
        if answer.raw is not None:
            return JSONResponse(answer.raw, status_code=answer.status, headers=answer.headers)
        if answer.status >= 400:
            return _error(answer.status, answer.error, answer.headers)
        if body.get("stream"):
            return StreamingResponse(
                self._chunks(body, answer), media_type="text/event-stream", headers=answer.headers
            )
        return JSONResponse(
            self._completion(body, answer), status_code=answer.status, headers=answer.headers
        )

    async def _chunks(self, body: Mapping[str, Any], answer: Answer) -> AsyncIterator[bytes]:
        """The answer as OpenAI's stream: a role chunk, a chunk per word, the finish, the usage
        (when asked for), `[DONE]`; or cut off after `break_after` words."""
        head = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
        }

        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return f"data: {json.dumps({**head, 'choices': [choice], **extra})}\n\n".encode()

        yield event({"role": "assistant", "content": ""})
        words = re.findall(r"\S+\s*", answer.text or "")
        for n, word in enumerate(words):
            if answer.break_after is not None and n >= answer.break_after:
                raise ConnectionAbortedError("the fake LLM broke the stream off, as asked")
            if n and answer.chunk_delay_s:
                await asyncio.sleep(answer.chunk_delay_s)
            yield event({"content": word})
        yield event({}, "stop")
        if answer.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            }
            chunk = {**head, "choices": [], "usage": usage}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    async def _moderate(self, request: Request) -> JSONResponse:
        _, body = await self._record(request)
        if body is None or not isinstance(body.get("input"), str | list):
            return _error(400, "expected a JSON object with an input")
        with self._lock:
            verdict = self._verdicts.popleft() if self._verdicts else Verdict()
        if verdict.delay_s > 0:
            await _pause(request, verdict.delay_s)
        if verdict.status >= 400:
            return _error(verdict.status, verdict.error)
        categories = {name: name in verdict.categories for name in MODERATION_CATEGORIES}
        scores = {name: 0.9 if on else 0.001 for name, on in categories.items()}
        result = {
            "flagged": verdict.flagged,
            "categories": categories,
            "category_scores": scores,
            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
        }
        return JSONResponse(
            {
                "id": f"modr-{next(self._ids)}",
                "model": body.get("model", "fake-moderation"),
                "results": [result],
            }
        )

    async def _transcribe(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            await self._record(request)
            return _error(400, "expected a multipart form with a file and a model")
        form = await request.form(max_files=2, max_fields=20)
        fields: dict[str, Any] = {}
        files: dict[str, Upload] = {}
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields[name] = value
            else:
                files[name] = Upload(value.filename, value.content_type, await value.read())
        await form.close()
        call = Call(request.method, request.url.path, dict(request.headers), fields, files)
        with self._lock:
            self._calls.append(call)
        upload = files.get("file")
        if upload is None or not fields.get("model"):
            return _error(400, "expected a multipart form with a file and a model")
        extension = (upload.filename or "").rpartition(".")[2].lower()
        if extension not in TRANSCRIPTION_EXTENSIONS:
            return _error(
                400, f"Invalid file format. Supported formats: {list(TRANSCRIPTION_EXTENSIONS)}"
            )
        if len(upload.data) > MAX_UPLOAD_BYTES:
            return _error(413, f"Maximum content size limit ({MAX_UPLOAD_BYTES}) exceeded")
        answer = await self._next_answer(request)
        if answer.raw is not None:
            return JSONResponse(answer.raw, status_code=answer.status, headers=answer.headers)
        if answer.status >= 400:
            return _error(answer.status, answer.error, answer.headers)
        text = answer.text if answer.text is not None else f"transcript of {len(upload.data)} bytes"
        kind = fields.get("response_format") or "json"
        if kind == "text":
            return PlainTextResponse(text, headers=answer.headers)
        reply: dict[str, Any] = {"text": text}
        if answer.duration_s is not None and kind == "verbose_json":
            segment = {"id": 0, "start": 0.0, "end": answer.duration_s, "text": text}
            reply = {
                "task": "transcribe",
                "language": "english",
                "duration": answer.duration_s,
                "text": text,
                "segments": [segment],
            }
        elif answer.duration_s is not None:
            reply["usage"] = {"type": "duration", "seconds": answer.duration_s}
        return JSONResponse(reply, headers=answer.headers)

    async def _speak(self, request: Request) -> Response:
        _, body = await self._record(request)
        text = (body or {}).get("input")
        if body is None or not body.get("model") or not body.get("voice"):
            return _error(400, "expected a JSON object with a model, an input and a voice")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_SPEECH_INPUT:
            return _error(400, f"input must be 1 to {MAX_SPEECH_INPUT} characters")
        kind = body.get("response_format") or "mp3"
        if kind not in SPEECH_FORMATS:
            return _error(400, f"response_format must be one of {list(SPEECH_FORMATS)}")
        answer = await self._next_answer(request)
        if answer.raw is not None:
            return JSONResponse(answer.raw, status_code=answer.status, headers=answer.headers)
        if answer.status >= 400:
            return _error(answer.status, answer.error, answer.headers)
        head, content_type = SPEECH_FORMATS[kind]
        audio = answer.audio if answer.audio is not None else head + text.encode()
        return Response(
            audio, media_type=answer.content_type or content_type, headers=answer.headers
        )

    async def _next_answer(self, request: Request) -> Answer:
        """The next scripted answer (an empty one when none is queued), after its delay."""
        with self._lock:
            answer = self._script.popleft() if self._script else Answer()
        if answer.delay_s > 0:
            await _pause(request, answer.delay_s)
        return answer

    def _completion(self, body: Mapping[str, Any], answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        finish = "stop"
        if answer.tool_calls:
            finish = "tool_calls"
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for i, call in enumerate(answer.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            },
        }


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _last_user_text(messages: Any) -> str:
    """The text of the last user message (text parts joined), or ""."""
    if not isinstance(messages, Iterable) or isinstance(messages, str | bytes | Mapping):
        return ""
    for message in reversed(list(messages)):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
            return "".join(str(p) for p in parts)
        return ""
    return ""


async def _pause(request: Request, delay_s: float) -> None:
    """Sleep `delay_s`, ending early when the client hangs up (it timed out)."""
    deadline = time.monotonic() + delay_s
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 0.02))
        if await request.is_disconnected():
            return
