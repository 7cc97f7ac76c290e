"""Studio commands: latency of `/show`, `/set` and `/try`, end to end over HTTP.

One `main.py serve` on a temporary data directory, with the zero-latency fake model server behind
`/try`. A bot is made through the Studio itself (`/newbot`, `/set ... model openai/fake`), then each
command is sent sequentially (concurrency 1) to `POST /api/v1/studio/messages` with the owner key,
the way a front (the web console, the terminal) uses it; client-side wall time with aiohttp.
`GET /healthz` is timed the same way as the HTTP floor. The number of timed rounds is what fits in
ROUNDS_BUDGET_S at the pace of the warm-up (REQUESTS on an unloaded machine).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_web import web_platform
from bench.common import (
    HOST,
    TIMEOUT,
    Child,
    Figure,
    Report,
    calibrated,
    free_port,
    model_server,
    percentile,
    wait_http,
)
from bench.llm_server import ANSWER

BOT = "bench-bot"
WARMUP = 30
REQUESTS = 300  # rounds (a /show, a /set and a /try each) at most, and GET /healthz
REQUESTS_LEAST = 100  # rounds, however slow the machine
ROUNDS_BUDGET_S = 10.0  # the timed rounds (about 7 s unloaded)
TRY_RESET_EVERY = 20  # `/try BOT --new` (untimed) keeps the try conversation's history bounded
BUDGET_S = ROUNDS_BUDGET_S + 5  # start-up and warm-up ~4 s, /healthz ~0.1 s
FIGURES = (
    "studio_show_p50_ms",
    "studio_show_p99_ms",
    "studio_set_p50_ms",
    "studio_set_p99_ms",
    "studio_try_p50_ms",
    "studio_try_p99_ms",
    "studio_healthz_p50_ms",
    "studio_errors",
)

Check = Callable[[str], bool]


@dataclass(slots=True)
class Client:
    """Says things to the Studio and keeps count of what went wrong."""

    http: aiohttp.ClientSession
    url: str
    sent: int = 0
    errors: int = 0
    first_error: str = ""
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)

    async def say(self, text: str, check: Check) -> bool:
        """One Studio message; True if it answered 200 with a reply that passes `check`."""
        self.sent += 1
        try:
            async with self.http.post(self.url, json={"text": text}) as response:
                data: Any = await response.json(content_type=None)
                reply = data.get("reply", "") if isinstance(data, dict) else ""
                if response.status != 200 or not isinstance(reply, str) or not check(reply):
                    return self.failed(f"{text!r}: {response.status} {str(data)[:300]}")
                return True
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return self.failed(f"{text!r}: {type(exc).__name__}: {exc}")

    async def timed(self, name: str, text: str, check: Check) -> None:
        started = time.perf_counter()
        ok = await self.say(text, check)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if ok:
            self.latencies_ms.setdefault(name, []).append(elapsed_ms)

    def failed(self, why: str) -> bool:
        self.errors += 1
        if not self.first_error:
            self.first_error = why
            print(f"# studio: request failed: {why}", file=sys.stderr, flush=True)
        return False


def _shows(reply: str) -> bool:
    return BOT in reply and "openai/fake" in reply


def _sets(value: str) -> Check:
    return lambda reply: f"temperature is now `{value}`" in reply


def _answers(reply: str) -> bool:
    return ANSWER in reply


async def _setup(client: Client) -> None:
    """The bot, made through the Studio as a person would; raises if the Studio refuses."""
    if not await client.say(f"/newbot {BOT}", lambda reply: BOT in reply):
        raise RuntimeError(f"/newbot failed: {client.first_error}")
    if not await client.say(f"/set {BOT} model openai/fake", lambda r: "openai/fake" in r):
        raise RuntimeError(f"/set model failed: {client.first_error}")
    if not await client.say(f"/try {BOT} hello", _answers):
        raise RuntimeError(f"/try does not reach the fake model: {client.first_error}")
    client.errors, client.first_error = 0, ""


async def _round(client: Client, i: int, *, timed: bool) -> None:
    """One `/show`, one `/set` (alternating values: every set is a real edit), one `/try`."""
    temperature = "0.5" if i % 2 == 0 else "0.6"
    commands: list[tuple[str, str, Check]] = [
        ("show", f"/show {BOT}", _shows),
        ("set", f"/set {BOT} temperature {temperature}", _sets(temperature)),
        ("try", f"/try {BOT} hello", _answers),
    ]
    if i % TRY_RESET_EVERY == 0:
        await client.say(f"/try {BOT} --new", lambda reply: "new conversation" in reply)
    for name, text, check in commands:
        if timed:
            await client.timed(name, text, check)
        else:
            await client.say(text, check)


async def _healthz(http: aiohttp.ClientSession, url: str, client: Client) -> list[float]:
    samples: list[float] = []
    for i in range(WARMUP + REQUESTS):
        started = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            ok = response.status == 200
        elapsed_ms = (time.perf_counter() - started) * 1000
        if not ok:
            client.failed(f"GET /healthz: {response.status}")
        elif i >= WARMUP:
            samples.append(elapsed_ms)
    return samples


def _start(stack: ExitStack, tmp: Path, llm_base: str) -> tuple[Child, int]:
    port = free_port()
    return web_platform(stack, tmp, llm_base, port), port


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-studio-")))
        _, llm_base = await model_server(stack, tmp)
        platform, port = _start(stack, tmp, llm_base)
        base = f"http://{HOST}:{port}"
        await wait_http(f"{base}/healthz", platform)
        key = (tmp / "data" / "local.key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as http:
            client = Client(http, f"{base}/api/v1/studio/messages")
            await _setup(client)
            report.begin("the Studio commands")
            started = time.perf_counter()
            for i in range(WARMUP):
                await _round(client, i, timed=False)
            each_s = (time.perf_counter() - started) / WARMUP
            rounds = calibrated(ROUNDS_BUDGET_S, each_s, least=REQUESTS_LEAST, most=REQUESTS)
            report.needs(rounds * each_s, f"a round of commands took {each_s * 1000:.0f} ms")
            for i in range(rounds):
                await _round(client, i, timed=True)
            report.add(*_command_figures(client, rounds))
            report.begin("GET /healthz")
            healthz = await _healthz(http, f"{base}/healthz", client)
        if client.errors:
            print(f"# studio server log tail:\n{platform.log_tail()}", file=sys.stderr)
    for name, samples in client.latencies_ms.items():  # does a command slow down as edits pile up?
        head, tail = samples[:50], samples[-50:]
        if head and tail:
            print(
                f"# studio {name}: p50 of first 50 {percentile(head, 0.5):.2f} ms, "
                f"of last 50 {percentile(tail, 0.5):.2f} ms",
                file=sys.stderr,
            )
    report.add(*_healthz_figures(client, healthz))


def _command_figures(client: Client, rounds: int) -> list[Figure]:
    how = (
        f"POST /api/v1/studio/messages with the owner key, concurrency 1, {rounds} requests "
        f"after {WARMUP} warm-up, commands interleaved show/set/try; client-side wall time"
    )
    what = {
        "show": f"`/show {BOT}`",
        "set": f"`/set {BOT} temperature 0.5|0.6` (alternating: every set is a real edit)",
        "try": f"`/try {BOT} hello` via litellm to the zero-latency fake model "
        f"(`/try --new` untimed every {TRY_RESET_EVERY})",
    }
    goals = {("show", 0.5): "<= 20"}
    figures: list[Figure] = []
    for name in ("show", "set", "try"):
        samples = client.latencies_ms.get(name, [])
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            value = round(percentile(samples, q), 2) if samples else float("nan")
            figures.append(
                Figure(
                    f"studio_{name}_{label}_ms",
                    value,
                    "ms",
                    goals.get((name, q), ""),
                    f"{label} of {what[name]}; {how} ({len(samples)} ok)",
                )
            )
    return figures


def _healthz_figures(client: Client, healthz: list[float]) -> list[Figure]:
    return [
        Figure(
            "studio_healthz_p50_ms",
            round(percentile(healthz, 0.5), 2) if healthz else float("nan"),
            "ms",
            "",
            f"p50 of GET /healthz on the same server, concurrency 1, {REQUESTS} after "
            f"{WARMUP} warm-up: the HTTP floor",
        ),
        Figure(
            "studio_errors",
            client.errors,
            "",
            "<= 0",
            f"non-200 or wrong replies of {client.sent} requests (a right reply: /show names the "
            "bot and its model, /set says 'temperature is now `V`', /try has the model's answer)"
            + (f"; first: {client.first_error[:120]}" if client.first_error else ""),
        ),
    ]
