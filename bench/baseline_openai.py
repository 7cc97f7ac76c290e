"""The hand-written baseline of the OpenAI-compatible API: the least a proxy must do, nothing else.

One FastAPI endpoint, `POST /v1/chat/completions`: check the bearer key, parse the body, make the
litellm call against the model server, answer in OpenAI's shape (the usage the model reported;
with `"stream": true`, the model's chunks as server-sent events, then `data: [DONE]`).

`python -m bench.baseline_openai PORT` serves it with the platform's uvicorn settings (one
process, access log off). `BENCH_LLM_BASE` is the model server's `/v1` URL, `BENCH_API_KEY` the
key callers must send as `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

import litellm
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bench.baselines import API_BASE, main

API_KEY = os.environ.get("BENCH_API_KEY", "sk-baseline")

app = FastAPI()
bearer = HTTPBearer(auto_error=False)


class MessageIn(BaseModel):
    role: str
    content: str


class ChatCompletionIn(BaseModel):
    model: str
    messages: list[MessageIn]
    stream: bool = False


class MessageOut(BaseModel):
    role: str = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: MessageOut
    finish_reason: str


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletionOut(BaseModel):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionIn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ChatCompletionOut | StreamingResponse | JSONResponse:
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), API_KEY.encode()):
        error = {"message": "invalid API key", "type": "invalid_request_error", "param": None}
        return JSONResponse({"error": {**error, "code": "invalid_api_key"}}, status_code=401)
    response: Any = await litellm.acompletion(
        model="openai/fake",
        api_base=API_BASE,
        api_key="sk-bench",
        messages=[message.model_dump() for message in body.messages],
        stream=body.stream,
        num_retries=0,
        max_retries=0,
        timeout=30,
    )
    if body.stream:
        return StreamingResponse(_events(response, body.model), media_type="text/event-stream")
    choice = response.choices[0]
    usage = response.usage
    return ChatCompletionOut(
        id=response.id,
        created=response.created,
        model=body.model,
        choices=[
            ChoiceOut(
                message=MessageOut(content=choice.message.content or ""),
                finish_reason=choice.finish_reason or "stop",
            )
        ],
        usage=UsageOut(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
        ),
    )


async def _events(stream: Any, model: str) -> AsyncIterator[str]:
    """litellm's chunks as OpenAI's `chat.completion.chunk` events, then `[DONE]`."""
    async for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        delta = {}
        if choice.delta.role:
            delta["role"] = choice.delta.role
        if choice.delta.content is not None:
            delta["content"] = choice.delta.content
        event = {
            "id": chunk.id,
            "object": "chat.completion.chunk",
            "created": chunk.created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": choice.finish_reason}],
        }
        yield f"data: {json.dumps(event)}\n\n"
    yield "data: [DONE]\n\n"


if __name__ == "__main__":
    main(app)
