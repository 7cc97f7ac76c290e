"""The fake OpenAI-compatible server as its own process, for benchmarks: `python -m
bench.llm_server PORT`. It answers at once (no scripted latency)."""

from __future__ import annotations

import sys

import uvicorn

from tests.fakes.llm import FakeLLM

if __name__ == "__main__":
    uvicorn.run(
        FakeLLM().app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
