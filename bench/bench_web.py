"""Web channel: throughput and platform-added latency against a hand-written FastAPI + litellm
endpoint making the same model call, side by side in one run, both against a zero-latency fake."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import aiohttp

from bench.common import PYTHON, ROOT, Figure, base_env, child, free_port, percentile, wait_healthy

CONCURRENCY = 16
WARMUP_S = 2.0
RUN_S = 8.0
ROUNDS = 3
LATENCY_REQUESTS = 400
SESSIONS = 50

Send = Callable[[aiohttp.ClientSession, int], Awaitable[None]]


async def _throughput(send: Send) -> float:
    """Completed requests per second at fixed concurrency, after a warm-up."""
    done = 0
    measuring = False
    stop = False

    async def worker(worker_id: int, http: aiohttp.ClientSession) -> None:
        nonlocal done
        i = worker_id
        while not stop:
            await send(http, i)
            i += CONCURRENCY
            if measuring:
                done += 1

    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.create_task(worker(w, http)) for w in range(CONCURRENCY)]
        await asyncio.sleep(WARMUP_S)
        measuring, started = True, time.perf_counter()
        await asyncio.sleep(RUN_S)
        measuring, elapsed = False, time.perf_counter() - started
        stop = True
        await asyncio.gather(*tasks)
    return done / elapsed


async def _latencies(send: Send) -> list[float]:
    async with aiohttp.ClientSession() as http:
        for i in range(50):
            await send(http, i)
        samples = []
        for i in range(LATENCY_REQUESTS):
            started = time.perf_counter()
            await send(http, i)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _sender(url: str, sessions: list[str | None]) -> Send:
    async def send(http: aiohttp.ClientSession, i: int) -> None:
        slot = i % len(sessions)
        body: dict[str, str] = {"text": f"question {i}: how do refunds work?"}
        if sessions[slot]:
            body["session"] = sessions[slot]  # type: ignore[assignment]
        async with http.post(url, json=body) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}: {data}")
            sessions[slot] = data["session"]

    return send


async def _setup_platform(base: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    spec = {"name": "bench-bot", "model": "openai/fake", "history": 0}
    async with aiohttp.ClientSession(base_url=base, headers=headers) as http:
        for method, path, body in [
            ("POST", "/api/v1/bots/import", spec),
            ("POST", "/api/v1/bots/bench-bot/promote", {"to": "staging"}),
            ("POST", "/api/v1/bots/bench-bot/promote", {"to": "production"}),
            ("POST", "/api/v1/bots/bench-bot/deployments", {"channel": "web"}),
        ]:
            async with http.request(
                method, path, data=json.dumps(body), headers={"content-type": "application/json"}
            ) as response:
                data = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{path}: {response.status} {data}")
    return str(data["id"])


async def run() -> list[Figure]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        llm_port, platform_port, baseline_port = free_port(), free_port(), free_port()
        llm_base = f"http://127.0.0.1:{llm_port}/v1"
        stack.enter_context(
            child([PYTHON, "-m", "bench.llm_server", str(llm_port)], env=base_env())
        )
        platform = stack.enter_context(
            child(
                [PYTHON, str(ROOT / "main.py"), "serve", "--port", str(platform_port)],
                cwd=tmp,
                env=base_env(
                    STUDIO_DATA_DIR=str(tmp / "data"),
                    STUDIO_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'data' / 'studio.db'}",
                    STUDIO_LLM_API_BASE=llm_base,
                    STUDIO_WEB_RATE_PER_SESSION="100000000",
                    STUDIO_WEB_RATE_PER_ADDRESS="100000000",
                    OPENAI_API_KEY="sk-bench",
                ),
            )
        )
        baseline = stack.enter_context(
            child(
                [
                    PYTHON,
                    "-m",
                    "uvicorn",
                    "bench.baseline_web:app",
                    "--port",
                    str(baseline_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env=base_env(BENCH_LLM_BASE=llm_base, OPENAI_API_KEY="sk-bench"),
            )
        )
        await wait_healthy(f"http://127.0.0.1:{platform_port}/healthz", platform)
        await wait_healthy(f"http://127.0.0.1:{baseline_port}/docs", baseline)
        key = (tmp / "data" / "local.key").read_text().strip()
        deployment = await _setup_platform(f"http://127.0.0.1:{platform_port}", key)

        platform_send = _sender(
            f"http://127.0.0.1:{platform_port}/api/v1/chat/{deployment}", [None] * SESSIONS
        )
        baseline_send = _sender(f"http://127.0.0.1:{baseline_port}/chat", [None] * SESSIONS)
        rates: dict[str, list[float]] = {"platform": [], "baseline": []}
        sides = [("platform", platform_send), ("baseline", baseline_send)]
        for round_ in range(ROUNDS):  # A B, B A, A B: drift on a shared machine hits both sides
            for side, send in sides if round_ % 2 == 0 else sides[::-1]:
                rates[side].append(await _throughput(send))
        platform_lat = await _latencies(platform_send)
        baseline_lat = await _latencies(baseline_send)

    platform_rps = sum(rates["platform"]) / ROUNDS
    baseline_rps = sum(rates["baseline"]) / ROUNDS
    how = (
        f"{CONCURRENCY} concurrent clients, {ROUNDS}x{RUN_S:.0f} s per side in ABBAAB order; "
        "bot history 0 so both sides make the same model call"
    )
    lat_how = f"{LATENCY_REQUESTS} sequential requests per side"
    p50 = percentile(platform_lat, 0.5) - percentile(baseline_lat, 0.5)
    p99 = percentile(platform_lat, 0.99) - percentile(baseline_lat, 0.99)
    return [
        Figure("web_throughput_ratio", round(platform_rps / baseline_rps, 3), "", ">= 0.8", how),
        Figure("web_platform_rps", round(platform_rps, 1), "req/s", "", how),
        Figure("web_baseline_rps", round(baseline_rps, 1), "req/s", "", how),
        Figure("web_added_latency_p50_ms", round(p50, 2), "ms", "<= 3", lat_how),
        Figure("web_added_latency_p99_ms", round(p99, 2), "ms", "<= 10", lat_how),
        Figure("web_platform_p50_ms", round(percentile(platform_lat, 0.5), 2), "ms", "", lat_how),
        Figure("web_baseline_p50_ms", round(percentile(baseline_lat, 0.5), 2), "ms", "", lat_how),
        Figure("web_platform_p99_ms", round(percentile(platform_lat, 0.99), 2), "ms", "", lat_how),
        Figure("web_baseline_p99_ms", round(percentile(baseline_lat, 0.99), 2), "ms", "", lat_how),
    ]
