"""The hand-written baseline: the same model call and reply, with no platform around it."""

from __future__ import annotations

import os
import secrets

import litellm
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
API_BASE = os.environ["BENCH_LLM_BASE"]


class ChatIn(BaseModel):
    text: str
    session: str | None = None


@app.post("/chat")
async def chat(body: ChatIn) -> dict[str, str]:
    response = await litellm.acompletion(
        model="openai/fake",
        api_base=API_BASE,
        api_key="sk-bench",
        messages=[
            {"role": "system", "content": "You are a helpful, concise assistant."},
            {"role": "user", "content": body.text},
        ],
        temperature=0.7,
        timeout=30,
        num_retries=0,
        max_retries=0,
    )
    reply = response.choices[0].message.content or ""
    return {"session": body.session or secrets.token_urlsafe(18), "reply": reply}
