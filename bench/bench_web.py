"""Web channel: throughput and platform-added latency against a hand-written baseline.

Both sides run at once, each as its own uvicorn process with the same settings, against one
zero-latency fake model server: the platform (`main.py serve`, a bot with history 10 deployed on
the web channel) and `bench/baseline_web.py` (one FastAPI endpoint making the same litellm call).
The load generator alternates between them so drift on a shared machine hits both sides.
Throughput phases last a fixed time; the number of sequential latency requests is what fits in
LATENCY_BUDGET_S at the pace of the warm-up (LATENCY_REQUESTS on an unloaded machine).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    HOST,
    TIMEOUT,
    Child,
    Figure,
    Report,
    connections,
    free_port,
    model_server,
    percentile,
    wait_http,
)
from bench.llm_server import ANSWER
from bench.load import (
    Alternation,
    Load,
    alternating,
    baseline_server,
    cpu_figure,
    deploy_bench_bot,
    platform_server,
    rate_figure,
    ratio,
    saturate,
)

CONCURRENCY = 16
WARMUP_S = 2.0
MEASURE_S = 8.0
ORDER = "ABBAAB"  # A = platform, B = baseline: three phases each, linear drift cancels
SESSIONS = 50
LATENCY_WARMUP = 50
LATENCY_REQUESTS = 400  # per side, at most
LATENCY_LEAST = 100  # per side, however slow the machine
LATENCY_BUDGET_S = 6.0  # both sides' sequential requests (about 3.6 s unloaded)
LATENCY = Alternation(LATENCY_WARMUP, LATENCY_BUDGET_S, LATENCY_LEAST, LATENCY_REQUESTS)
HISTORY = 10
BUDGET_S = len(ORDER) * (WARMUP_S + MEASURE_S) + LATENCY_BUDGET_S + 10  # start-up ~5 s
FIGURES = (
    "web_throughput_ratio",
    "web_platform_rps",
    "web_platform_cpu_ms_per_req",
    "web_baseline_rps",
    "web_baseline_cpu_ms_per_req",
    "web_added_latency_p50_ms",
    "web_added_latency_p99_ms",
    "web_platform_p50_ms",
    "web_platform_p99_ms",
    "web_baseline_p50_ms",
    "web_baseline_p99_ms",
    "web_platform_errors",
    "web_baseline_errors",
)


@dataclass(slots=True)
class Side:
    """One side of the comparison: where to chat, its sessions, and what it did."""

    name: str
    url: str
    proc: Child
    free: deque[int] = field(default_factory=deque)
    sessions: list[str | None] = field(default_factory=list)
    sent: int = 0
    errors: int = 0
    first_error: str = ""
    rates: list[float] = field(default_factory=list)
    cpu_ms_per_request: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessions = [None] * SESSIONS
        self.free.extend(range(SESSIONS))

    async def send(self, http: aiohttp.ClientSession) -> bool:
        """One chat turn on a session nobody else is using; True if it answered 200."""
        slot = self.free.popleft()
        self.sent += 1
        body: dict[str, Any] = {"text": f"question {self.sent}: how do refunds work?"}
        if self.sessions[slot] is not None:
            body["session"] = self.sessions[slot]
        try:
            async with http.post(self.url, json=body, timeout=TIMEOUT) as response:
                data = await response.json(content_type=None)
                if response.status != 200 or data.get("reply") != ANSWER:
                    return self._failed(f"{response.status} {str(data)[:300]}")
                self.sessions[slot] = data["session"]
                return True
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        finally:
            self.free.append(slot)

    def _failed(self, why: str) -> bool:
        self.errors += 1
        if not self.first_error:
            self.first_error = why
            print(f"# {self.name}: request failed: {why}", file=sys.stderr, flush=True)
        return False


async def throughput(
    side: Side,
    http: aiohttp.ClientSession,
    *,
    warmup_s: float = WARMUP_S,
    measure_s: float = MEASURE_S,
) -> None:
    """Fixed concurrency for `warmup_s` + `measure_s`; completed requests per second measured."""
    phase = await saturate(
        lambda: side.send(http), side.proc, Load(CONCURRENCY, warmup_s, measure_s)
    )
    side.rates.append(phase.rate)
    if phase.cpu_ms is not None:
        side.cpu_ms_per_request.append(phase.cpu_ms)
    print(f"# {side.name}: {phase.rate:.1f} req/s", file=sys.stderr, flush=True)


async def _latencies(a: Side, b: Side, http: aiohttp.ClientSession, report: Report) -> int:
    """Sequential requests (concurrency 1), alternating sides request by request (ABBA...), as
    many per side as fit in LATENCY_BUDGET_S at the warm-up's pace: how many."""

    async def measured(side: Side) -> None:
        started = time.perf_counter()
        ok = await side.send(http)
        if ok:
            side.latencies_ms.append((time.perf_counter() - started) * 1000)

    return await alternating(
        a, b, lambda side: side.send(http), measured, LATENCY, report, "a request"
    )


async def setup_platform(base: str, key: str) -> str:
    """Import, promote to production and deploy on the web: the deployment id."""
    return await deploy_bench_bot(base, key, HISTORY, {"channel": "web"})


def _start(stack: ExitStack, tmp: Path, llm_base: str) -> tuple[Child, Child, int, int]:
    platform_port, baseline_port = free_port(), free_port()
    platform = web_platform(stack, tmp, llm_base, platform_port)
    baseline = baseline_server(
        stack,
        tmp,
        "bench.baseline_web",
        baseline_port,
        BENCH_LLM_BASE=llm_base,
        OPENAI_API_KEY="sk-bench",
    )
    return platform, baseline, platform_port, baseline_port


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-web-")))
        llm, llm_base = await model_server(stack, tmp)
        platform, baseline, platform_port, baseline_port = _start(stack, tmp, llm_base)
        await wait_http(f"http://{HOST}:{platform_port}/healthz", platform)
        await wait_http(f"http://{HOST}:{baseline_port}/healthz", baseline)
        key = (tmp / "data" / "local.key").read_text().strip()
        deployment = await setup_platform(f"http://{HOST}:{platform_port}", key)
        a = Side("platform", f"http://{HOST}:{platform_port}/api/v1/chat/{deployment}", platform)
        b = Side("baseline", f"http://{HOST}:{baseline_port}/chat", baseline)

        connector = connections(CONCURRENCY * 2)
        async with aiohttp.ClientSession(connector=connector) as http:
            for side in (a, b):  # both answer before anything is timed
                if not await side.send(http):
                    raise RuntimeError(f"{side.name} does not answer: {side.first_error}")
            report.begin("the throughput phases")
            for letter in ORDER:
                await throughput(a if letter == "A" else b, http)
            report.add(*_throughput_figures(a, b))
            report.begin("the latency requests")
            count = await _latencies(a, b, http, report)
            report.add(*_latency_figures(a, b, count))
        llm_cpu = llm.cpu_seconds()
        for side in (a, b):
            if side.errors > side.sent // 100:
                raise RuntimeError(
                    f"{side.name}: {side.errors} of {side.sent} requests failed; "
                    f"first: {side.first_error}\n{side.proc.log_tail()}"
                )
    print(f"# llm server CPU {llm_cpu:.1f} s", file=sys.stderr)
    report.add(*(_errors(side) for side in (a, b)))


def web_platform(stack: ExitStack, tmp: Path, llm_base: str | None, port: int) -> Child:
    """`main.py serve` on `port` with its data in `tmp/data` (SQLite at `tmp/data/studio.db`),
    its `openai/` models at `llm_base` (None: no model server)."""
    models = {"STUDIO_LLM_API_BASE": llm_base} if llm_base is not None else {}
    return platform_server(
        stack,
        tmp,
        port,
        STUDIO_WEB_RATE_PER_SESSION="1000000",
        STUDIO_WEB_RATE_PER_ADDRESS="1000000",
        **models,
    )


def _throughput_figures(a: Side, b: Side) -> list[Figure]:
    how_rps = (
        f"aiohttp client, {CONCURRENCY} concurrent requests, {SESSIONS} sessions reused "
        f"(bot history {HISTORY}; the baseline sends system + user only); "
        f"{WARMUP_S:.0f} s warm-up + {MEASURE_S:.0f} s measured per phase, phases {ORDER} "
        "(A platform, B baseline); completed 200s per second, mean of phases"
    )
    how_cpu = "server process user+sys CPU during measured phases / completed requests"
    figures = [Figure("web_throughput_ratio", ratio(a.rates, b.rates), "", ">= 0.8", how_rps)]
    for side in (a, b):
        figures.append(rate_figure(f"web_{side.name}_rps", side.rates, "req/s", "{phases}"))
        figures += cpu_figure(f"web_{side.name}_cpu_ms_per_req", side.cpu_ms_per_request, how_cpu)
    return figures


def _latency_figures(a: Side, b: Side, count: int) -> list[Figure]:
    how_lat = (
        f"concurrency 1, {count} requests per side after {LATENCY_WARMUP} warm-up, "
        "sides alternating request by request; client-side wall time"
    )
    p = {(side.name, q): percentile(side.latencies_ms, q) for side in (a, b) for q in (0.5, 0.99)}
    figures = [
        Figure(
            "web_added_latency_p50_ms",
            round(p["platform", 0.5] - p["baseline", 0.5], 2),
            "ms",
            "<= 3",
            "p50(platform) - p50(baseline); " + how_lat,
        ),
        Figure(
            "web_added_latency_p99_ms",
            round(p["platform", 0.99] - p["baseline", 0.99], 2),
            "ms",
            "<= 10",
            "p99(platform) - p99(baseline); " + how_lat,
        ),
    ]
    for side in (a, b):
        figures += [
            Figure(f"web_{side.name}_p50_ms", round(p[side.name, 0.5], 2), "ms", "", how_lat),
            Figure(f"web_{side.name}_p99_ms", round(p[side.name, 0.99], 2), "ms", "", how_lat),
        ]
    return figures


def _errors(side: Side) -> Figure:
    return Figure(
        f"web_{side.name}_errors",
        side.errors,
        "",
        "<= 0",
        f"failed requests of {side.sent} sent"
        + (f"; first: {side.first_error[:120]}" if side.first_error else ""),
    )
