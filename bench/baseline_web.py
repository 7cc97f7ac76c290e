"""The hand-written baseline: one FastAPI endpoint making the same model call, nothing else.

`python -m bench.baseline_web PORT` serves it with the platform's uvicorn settings (one process,
access log off, log level info). `BENCH_LLM_BASE` is the model server's `/v1` URL.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys

import litellm
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

API_BASE = os.environ.get("BENCH_LLM_BASE", "http://127.0.0.1:9/v1")
SYSTEM = "You are a helpful, concise assistant."

# The platform's own litellm settings (runtime.llm.import_litellm), so neither side logs per call.
litellm.suppress_debug_info = True
litellm.telemetry = False
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
    logging.getLogger(_name).setLevel(logging.WARNING)

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
    response = await litellm.acompletion(
        model="openai/fake",
        api_base=API_BASE,
        api_key="sk-bench",
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": body.text}],
        num_retries=0,
        max_retries=0,
        timeout=30,
    )
    reply = response.choices[0].message.content or ""
    return ChatOut(session=body.session or secrets.token_urlsafe(18), reply=reply)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info", access_log=False
    )
    uvicorn.Server(config).run()
