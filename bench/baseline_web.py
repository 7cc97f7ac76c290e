"""The hand-written baseline: one FastAPI endpoint making the same model call, nothing else.

`python -m bench.baseline_web PORT` serves it with the platform's uvicorn settings (one process,
access log off, log level info). `BENCH_LLM_BASE` is the model server's `/v1` URL.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI
from pydantic import BaseModel

from bench.baselines import ask, main

app = FastAPI()


class ChatIn(BaseModel):
    text: str
    session: str | None = None


class ChatOut(BaseModel):
    session: str
    reply: str


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/chat")
async def chat(body: ChatIn) -> ChatOut:
    reply = await ask(body.text)
    return ChatOut(session=body.session or secrets.token_urlsafe(18), reply=reply)


if __name__ == "__main__":
    main(app)
