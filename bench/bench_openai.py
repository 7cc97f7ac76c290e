"""The OpenAI-compatible API: throughput against a hand-written FastAPI + litellm proxy.

Both sides run at once, each as its own uvicorn process, against one zero-latency fake model
server: the platform (`main.py serve`, `POST /openai/v1/chat/completions` with `model` = a bot
set up as `bench_web.setup_platform` does, the team's key as the bearer token) and
`bench/baseline_openai.py` (bearer check, body parsed, the litellm call, OpenAI's answer with
usage). The load generator keeps CONCURRENCY requests in flight for a fixed time per phase,
alternating between the sides (ORDER), first without streaming, then with `stream: true`.
Every request is stateless (one user message) and every answer is checked.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_web import CONCURRENCY, Side, setup_platform, throughput, web_platform
from bench.common import (
    HOST,
    TIMEOUT,
    Child,
    Figure,
    Report,
    connections,
    free_port,
    model_server,
    wait_http,
)
from bench.llm_server import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS
from bench.load import baseline_server, cpu_figure, rate_figure, ratio

WARMUP_S = 1.5
MEASURE_S = 5.0
STREAM_WARMUP_S = 1.0
STREAM_MEASURE_S = 3.0
ORDER = "ABBA"  # A = platform, B = baseline: linear drift cancels
BOT = "bench-bot"  # bench_web.setup_platform's
BASELINE_KEY = "sk-bench-baseline"
BUDGET_S = len(ORDER) * (WARMUP_S + MEASURE_S + STREAM_WARMUP_S + STREAM_MEASURE_S) + 10
FIGURES = (
    "openai_api_throughput_ratio",
    "openai_platform_rps",
    "openai_baseline_rps",
    "openai_platform_cpu_ms_per_request",
    "openai_baseline_cpu_ms_per_request",
    "openai_stream_throughput_ratio",
    "openai_stream_platform_rps",
    "openai_stream_baseline_rps",
    "openai_api_errors",
)


@dataclass(slots=True)
class ApiSide(Side):
    """One side of the comparison on the OpenAI API: its key, streaming or not (bench_web's
    `Side` with an OpenAI request instead of a web chat turn; its sessions go unused)."""

    key: str = ""
    stream: bool = False

    async def send(self, http: aiohttp.ClientSession) -> bool:
        """One stateless completion; True if it answered 200 with the model's text."""
        self.sent += 1
        body: dict[str, Any] = {
            "model": BOT,
            "messages": [{"role": "user", "content": f"question {self.sent}: refunds?"}],
        }
        if self.stream:
            body["stream"] = True
        headers = {"Authorization": f"Bearer {self.key}"}
        try:
            async with http.post(self.url, json=body, headers=headers, timeout=TIMEOUT) as response:
                if response.status != 200:
                    return self._failed(f"{response.status} {(await response.text())[:300]}")
                if self.stream:
                    return await self._streamed(response)
                data = await response.json(content_type=None)
                return self._answered(data)
        except (aiohttp.ClientError, TimeoutError, ValueError, LookupError, TypeError) as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")

    def _answered(self, data: Any) -> bool:
        text = data["choices"][0]["message"]["content"]
        total = data["usage"]["total_tokens"]
        if text != ANSWER or total != PROMPT_TOKENS + COMPLETION_TOKENS:
            return self._failed(f"wrong answer: {str(data)[:300]}")
        return True

    async def _streamed(self, response: aiohttp.ClientResponse) -> bool:
        """Read the events to `data: [DONE]`; the text of their deltas must be the answer."""
        text = ""
        async for raw in response.content:
            line = raw.decode().strip()
            if line == "data: [DONE]":
                if text != ANSWER:
                    return self._failed(f"wrong streamed answer: {text[:300]!r}")
                return True
            if line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if "error" in event:
                    return self._failed(f"error event: {line[:300]}")
                for choice in event.get("choices") or ():
                    text += choice.get("delta", {}).get("content") or ""
        return self._failed(f"the stream ended without [DONE] after {text[:300]!r}")


def _start(stack: ExitStack, tmp: Path, llm_base: str) -> tuple[Child, Child, int, int]:
    platform_port, baseline_port = free_port(), free_port()
    platform = web_platform(stack, tmp, llm_base, platform_port)
    baseline = baseline_server(
        stack,
        tmp,
        "bench.baseline_openai",
        baseline_port,
        BENCH_LLM_BASE=llm_base,
        BENCH_API_KEY=BASELINE_KEY,
    )
    return platform, baseline, platform_port, baseline_port


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-openai-")))
        _, llm_base = await model_server(stack, tmp)
        platform, baseline, platform_port, baseline_port = _start(stack, tmp, llm_base)
        await wait_http(f"http://{HOST}:{platform_port}/healthz", platform)
        await wait_http(f"http://{HOST}:{baseline_port}/healthz", baseline)
        key = (tmp / "data" / "local.key").read_text().strip()
        await setup_platform(f"http://{HOST}:{platform_port}", key)
        platform_url = f"http://{HOST}:{platform_port}/openai/v1/chat/completions"
        baseline_url = f"http://{HOST}:{baseline_port}/v1/chat/completions"
        a = ApiSide("platform", platform_url, platform, key=key)
        b = ApiSide("baseline", baseline_url, baseline, key=BASELINE_KEY)
        sa = ApiSide("platform stream", platform_url, platform, key=key, stream=True)
        sb = ApiSide("baseline stream", baseline_url, baseline, key=BASELINE_KEY, stream=True)
        sides = (a, b, sa, sb)

        async with aiohttp.ClientSession(connector=connections(CONCURRENCY * 2)) as http:
            for side in sides:  # every side answers before anything is timed
                if not await side.send(http):
                    raise RuntimeError(f"{side.name} does not answer: {side.first_error}")
            report.begin("the throughput phases")
            for letter in ORDER:
                side = a if letter == "A" else b
                await throughput(side, http, warmup_s=WARMUP_S, measure_s=MEASURE_S)
            report.add(*_figures(a, b))
            report.begin("the streaming throughput phases")
            for letter in ORDER:
                side = sa if letter == "A" else sb
                await throughput(side, http, warmup_s=STREAM_WARMUP_S, measure_s=STREAM_MEASURE_S)
            report.add(*_stream_figures(sa, sb))
        report.add(_errors(sides))
        for side in sides:
            if side.errors > side.sent // 100:
                raise RuntimeError(
                    f"{side.name}: {side.errors} of {side.sent} requests failed; "
                    f"first: {side.first_error}\n{side.proc.log_tail()}"
                )


def _how(stream: bool) -> str:
    warmup, measure = (STREAM_WARMUP_S, STREAM_MEASURE_S) if stream else (WARMUP_S, MEASURE_S)
    kind = (
        "`stream: true`, each response read to `data: [DONE]` and its deltas' text checked"
        if stream
        else "non-streaming, each answer's text and usage.total_tokens checked"
    )
    return (
        f"POST /openai/v1/chat/completions on `main.py serve` (model = a bot on openai/fake, "
        f"the team key as bearer) vs bench/baseline_openai.py (FastAPI: bearer check, pydantic "
        f"body, litellm.acompletion, OpenAI JSON with usage), both on one zero-latency model "
        f"server; aiohttp client, {CONCURRENCY} concurrent stateless requests (one user "
        f"message), {kind}; {warmup:g} s warm-up + {measure:g} s measured per phase, phases "
        f"{ORDER} (A platform, B baseline); completed 200s per second, mean of phases"
    )


def _figures(a: ApiSide, b: ApiSide) -> list[Figure]:
    how = _how(stream=False)
    figures = [
        Figure(
            "openai_api_throughput_ratio",
            ratio(a.rates, b.rates),
            "",
            ">= 0.85",
            "platform / baseline; " + how,
        )
    ]
    for side in (a, b):
        figures.append(
            rate_figure(f"openai_{side.name}_rps", side.rates, "req/s", "phases {phases}; " + how)
        )
    for side in (a, b):
        figures += cpu_figure(
            f"openai_{side.name}_cpu_ms_per_request",
            side.cpu_ms_per_request,
            "server process user+sys CPU during the measured non-streaming phases / "
            "completed requests, mean of phases",
        )
    return figures


def _stream_figures(a: ApiSide, b: ApiSide) -> list[Figure]:
    how = _how(stream=True)
    figures = [
        Figure(
            "openai_stream_throughput_ratio",
            ratio(a.rates, b.rates),
            "",
            "",
            "platform / baseline; " + how,
        )
    ]
    for side, name in ((a, "platform"), (b, "baseline")):
        figures.append(
            rate_figure(f"openai_stream_{name}_rps", side.rates, "req/s", "phases {phases}; " + how)
        )
    return figures


def _errors(sides: tuple[ApiSide, ...]) -> Figure:
    platform = [side for side in sides if side.name.startswith("platform")]
    failed = sum(side.errors for side in platform)
    sent = sum(side.sent for side in platform)
    baseline = sum(side.errors for side in sides if side.name.startswith("baseline"))
    first = next((side.first_error for side in platform if side.first_error), "")
    return Figure(
        "openai_api_errors",
        failed,
        "",
        "<= 0",
        f"platform requests (streaming or not) answering non-200 or without the model's text "
        f"(or, not streamed, with usage.total_tokens other than the model server's), of {sent} "
        f"sent, warm-up and first requests included; the baseline's: {baseline}"
        + (f"; first: {first[:120]}" if first else ""),
    )
