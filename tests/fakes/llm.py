"""A fake OpenAI-compatible server: records every call and pops scripted answers.

It runs uvicorn in its own thread and event loop on 127.0.0.1:0, so real clients (litellm, the
openai SDK) reach it over real HTTP from any test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer: a reply, an HTTP error, or either after a delay."""

    text: str | None = None
    status: int = 200
    error: str = "scripted error"
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    tool_calls: tuple[tuple[str, dict[str, Any] | str], ...] = ()
    prompt_tokens: int = 12
    completion_tokens: int = 5


class FakeLLM:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        routes = [
            Route("/v1/chat/completions", self._complete, methods=["POST"]),
            Route("/chat/completions", self._complete, methods=["POST"]),
        ]
        self.app = Starlette(routes=routes)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ------------------------------------------------------------------------

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def reply(self, text: str, **kwargs: Any) -> None:
        self.script(Answer(text=text, **kwargs))

    def fail(self, status: int, *, times: int = 1, **kwargs: Any) -> None:
        self.script(*[Answer(status=status, **kwargs) for _ in range(times)])

    def stall(self, delay_s: float, *, times: int = 1) -> None:
        self.script(*[Answer(text="too late", delay_s=delay_s) for _ in range(times)])

    def tool_calls(self, *calls: tuple[str, dict[str, Any] | str], text: str | None = None) -> None:
        self.script(Answer(text=text, tool_calls=calls))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._script.clear()

    # -- serving --------------------------------------------------------------------------

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.calls.append(Call(request.url.path, dict(request.headers), body))
            answer = self._script.popleft() if self._script else None
        if answer is None:
            last = next((m for m in reversed(body.get("messages", [])) if m["role"] == "user"), {})
            answer = Answer(text=f"echo: {last.get('content', '')}")
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        if answer.status != 200:
            error = {"error": {"message": answer.error, "type": "scripted", "code": answer.status}}
            return JSONResponse(error, status_code=answer.status, headers=answer.headers)
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        finish = "stop"
        if answer.tool_calls:
            finish = "tool_calls"
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
                for i, (name, args) in enumerate(answer.tool_calls)
            ]
        return JSONResponse(
            {
                "id": f"chatcmpl-{len(self.calls)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": answer.prompt_tokens,
                    "completion_tokens": answer.completion_tokens,
                    "total_tokens": answer.prompt_tokens + answer.completion_tokens,
                },
            },
            headers=answer.headers,
        )

    def start(self) -> FakeLLM:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-llm", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
