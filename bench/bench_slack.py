"""Slack channel: the ack time of `/slack/events`, and event-to-answer throughput against a
hand-written baseline.

Four processes on loopback: the zero-latency model (`bench.llm_server`), a fake Slack Web API
(`bench.slack_server`, counting answers per bot token), the platform (`main.py serve`, a bot with
history 10 deployed on Slack channel C0BENCH) and `bench/baseline_slack.py` (bare slack-bolt +
litellm). Events are signed `message` events in C0BENCH, each a reply in one of many threads, so
each thread is a conversation. An event is done when its answer reaches `chat.postMessage`; the
load generator alternates between the sides so drift on a shared machine hits both.
Throughput phases last a fixed time; the number of sequential events is what fits in
ACK_BUDGET_S at the pace of the warm-up (ACK_EVENTS on an unloaded machine).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    FIRST_ANSWER_S,
    HOST,
    PYTHON,
    ROOT,
    TIMEOUT,
    Child,
    Figure,
    Report,
    base_env,
    calibrated,
    child,
    connections,
    free_port,
    model_server,
    percentile,
    wait_file,
    wait_http,
)
from bench.slack_server import TEAM_ID

CONCURRENCY = 16  # events in flight per side: sent and not yet answered
THREADS = 50  # threads (conversations) per side; one event in flight per thread at a time
WARMUP_S = 1.5
MEASURE_S = 6.0
ORDER = "ABBAAB"  # A = platform, B = baseline: three phases each, linear drift cancels
ACK_WARMUP = 30
ACK_EVENTS = 300  # per side, at most
ACK_LEAST = 100  # per side, however slow the machine
ACK_BUDGET_S = 6.0  # both sides' sequential events (about 3.5 s unloaded)
HISTORY = 10
CHANNEL = "C0BENCH"
TEAM = "T0001"
USER = "U0001"
SECRET = "bench-signing-secret"
ANSWER_WAIT_S = 10.0  # an answer not posted by then is missing
BUDGET_S = len(ORDER) * (WARMUP_S + MEASURE_S) + ACK_BUDGET_S + 10  # start-up ~6 s
FIGURES = (
    "slack_throughput_ratio",
    "slack_platform_eps",
    "slack_platform_ack_p99_loaded_ms",
    "slack_platform_cpu_ms_per_event",
    "slack_baseline_eps",
    "slack_baseline_ack_p99_loaded_ms",
    "slack_baseline_cpu_ms_per_event",
    "slack_ack_p99_ms",
    "slack_ack_p50_ms",
    "slack_platform_answer_p50_ms",
    "slack_platform_answer_p99_ms",
    "slack_baseline_ack_p50_ms",
    "slack_baseline_ack_p99_ms",
    "slack_baseline_answer_p50_ms",
    "slack_baseline_answer_p99_ms",
    "slack_platform_errors",
    "slack_baseline_errors",
)

_seq = itertools.count(1)


def sign(body: bytes, secret: str) -> dict[str, str]:
    """Slack's request signature: `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/json",
    }


def event_body(text: str, *, thread_ts: str) -> bytes:
    """An `event_callback` envelope around a person's `message` in a thread of CHANNEL, with a
    fresh ts (the platform deduplicates on channel and ts)."""
    ts = f"{int(time.time())}.{next(_seq):06d}"
    event = {
        "type": "message",
        "user": USER,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "thread_ts": thread_ts,
        "team": TEAM,
        "channel": CHANNEL,
        "channel_type": "channel",
    }
    envelope = {
        "token": "verification-token",
        "team_id": TEAM,
        "api_app_id": "A0001",
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope).encode()


@dataclass(slots=True)
class Side:
    """One side of the comparison: where events go, its token at the fake, and what it did."""

    name: str
    url: str
    token: str
    proc: Child
    fake: str  # the fake Web API's root URL
    prefix: int  # keeps the sides' thread ts apart
    free: deque[int] = field(default_factory=deque)
    threads: list[str] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # answers seen per thread
    sent: int = 0
    bad_acks: int = 0
    missing: int = 0
    first_error: str = ""
    rates: list[float] = field(default_factory=list)
    cpu_ms_per_event: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)  # sequential
    answer_ms: list[float] = field(default_factory=list)  # sequential, event -> chat.postMessage
    loaded_ack_ms: list[float] = field(default_factory=list)  # during measured throughput phases

    def __post_init__(self) -> None:
        self.threads = [f"1600000000.{self.prefix}{k:05d}" for k in range(THREADS)]
        self.answered = [0] * THREADS
        self.free.extend(range(THREADS))

    @property
    def errors(self) -> int:
        return self.bad_acks + self.missing

    async def event(
        self, http: aiohttp.ClientSession, wait_s: float = ANSWER_WAIT_S
    ) -> tuple[float, float] | None:
        """One event in a thread nobody else is using, until its answer is posted: (ack ms,
        answer ms), or None if the ack was not a 200 or no answer came."""
        slot = self.free.popleft()
        self.sent += 1
        thread = self.threads[slot]
        body = event_body(f"question {self.sent}: how do refunds work?", thread_ts=thread)
        # Ask the fake first, so the answer time is not stretched by a late question.
        waiting = asyncio.create_task(self._answer(http, slot, wait_s))
        started = time.perf_counter()
        try:
            async with http.post(
                self.url, data=body, headers=sign(body, SECRET), timeout=TIMEOUT
            ) as response:
                text = await response.text()
                ack = time.perf_counter() - started
                if response.status != 200:
                    waiting.cancel()
                    self.bad_acks += 1
                    self._failed(f"ack {response.status} {text[:200]}")
                    return None
            if not await waiting:
                self.missing += 1
                self._failed(f"no answer posted in thread {thread} within {wait_s:g} s")
                return None
            return ack * 1000, (time.perf_counter() - started) * 1000
        except (aiohttp.ClientError, TimeoutError) as exc:
            waiting.cancel()
            self.bad_acks += 1
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self.free.append(slot)

    async def _answer(self, http: aiohttp.ClientSession, slot: int, wait_s: float) -> bool:
        params = {
            "token": self.token,
            "thread": self.threads[slot],
            "n": str(self.answered[slot] + 1),
            "timeout": str(wait_s),
        }
        try:
            async with http.get(f"{self.fake}/wait", params=params, timeout=TIMEOUT) as resp:
                data = await resp.json(content_type=None)
                self.answered[slot] = int(data["count"])  # a late answer shifts no later one
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            return False

    async def answers(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """What the fake Web API counted for this side's token so far."""
        params = {"token": self.token}
        async with http.get(f"{self.fake}/count", params=params, timeout=TIMEOUT) as response:
            return dict(await response.json(content_type=None))

    def _failed(self, why: str) -> None:
        if not self.first_error:
            self.first_error = why
            print(f"# {self.name}: event failed: {why}", file=sys.stderr, flush=True)


async def _throughput(side: Side, http: aiohttp.ClientSession) -> None:
    """CONCURRENCY events in flight for WARMUP_S + MEASURE_S; answers posted per second measured
    at the fake Web API."""
    measuring = False
    stop = False

    async def worker() -> None:
        while not stop:
            result = await side.event(http)
            if result is not None and measuring:
                side.loaded_ack_ms.append(result[0])

    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    try:
        await asyncio.sleep(WARMUP_S)
        before = (await side.answers(http))["answers"]
        cpu_before = side.proc.cpu_seconds()
        measuring, started = True, time.perf_counter()
        await asyncio.sleep(MEASURE_S)
        after = (await side.answers(http))["answers"]
        measuring, elapsed = False, time.perf_counter() - started
        cpu = side.proc.cpu_seconds() - cpu_before
        stop = True
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    done = after - before
    side.rates.append(done / elapsed)
    if done:
        side.cpu_ms_per_event.append(cpu * 1000 / done)
    print(f"# {side.name}: {done / elapsed:.1f} events/s", file=sys.stderr, flush=True)


async def _sequential(a: Side, b: Side, http: aiohttp.ClientSession, report: Report) -> int:
    """One event at a time, each after the previous one was answered, alternating sides event
    by event (ABBA...), as many per side as fit in ACK_BUDGET_S at the warm-up's pace: how
    many."""
    started = time.perf_counter()
    for _ in range(ACK_WARMUP):
        await a.event(http)
        await b.event(http)
    pair_s = (time.perf_counter() - started) / ACK_WARMUP
    count = calibrated(ACK_BUDGET_S, pair_s, least=ACK_LEAST, most=ACK_EVENTS)
    report.needs(count * pair_s, f"an event to each side took {pair_s * 1000:.0f} ms")
    for i in range(count):
        for side in (a, b) if i % 2 == 0 else (b, a):
            result = await side.event(http)
            if result is not None:
                side.ack_ms.append(result[0])
                side.answer_ms.append(result[1])
    return count


async def _setup_platform(base: str, key: str) -> str:
    """Import, promote to production and deploy on Slack channel CHANNEL: the deployment id."""
    spec = {"name": "bench-bot", "model": "openai/fake", "history": HISTORY}
    steps = [
        ("/api/v1/bots/import", spec),
        ("/api/v1/bots/bench-bot/promote", {"to": "staging"}),
        ("/api/v1/bots/bench-bot/promote", {"to": "production"}),
        ("/api/v1/bots/bench-bot/deployments", {"channel": "slack", "target": CHANNEL}),
    ]
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    data: Any = None
    async with aiohttp.ClientSession(headers=headers, timeout=TIMEOUT) as http:
        for path, body in steps:
            async with http.post(base + path, data=json.dumps(body)) as response:
                data = await response.json(content_type=None)
                if response.status >= 300:
                    raise RuntimeError(f"POST {path}: {response.status} {data}")
    return str(data["id"])


async def _fake_slack(stack: ExitStack, tmp: Path) -> tuple[Child, str]:
    port_file = tmp / "slack.port"
    fake = stack.enter_context(
        child(
            [PYTHON, "-m", "bench.slack_server", str(port_file)],
            env=base_env(),
            log=tmp / "slack.log",
        )
    )
    return fake, f"http://{HOST}:{await wait_file(port_file, fake)}"


def _platform_env(tmp: Path) -> dict[str, str]:
    data = tmp / "data"
    return {
        "STUDIO_DATA_DIR": str(data),
        "STUDIO_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'studio.db'}",
    }


def _workspace_key(tmp: Path) -> str:
    """The owner key of the fake workspace's team, made before `serve` starts: only that team
    may deploy to the workspace's channels (the platform finds the team on first contact)."""
    result = subprocess.run(
        [PYTHON, str(ROOT / "main.py"), "team", "create", f"slack-{TEAM_ID.lower()}"],
        cwd=tmp,
        env=base_env(**_platform_env(tmp)),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.strip().splitlines()[-1]


def _start(
    stack: ExitStack, tmp: Path, llm_base: str, slack_root: str
) -> tuple[Child, Child, int, int]:
    platform_port, baseline_port = free_port(), free_port()
    platform = stack.enter_context(
        child(
            [PYTHON, str(ROOT / "main.py"), "serve", "--port", str(platform_port)],
            cwd=tmp,  # no .env from the repository
            log=tmp / "platform.log",
            env=base_env(
                **_platform_env(tmp),
                STUDIO_LLM_API_BASE=llm_base,
                SLACK_BOT_TOKEN="xoxb-platform",
                SLACK_SIGNING_SECRET=SECRET,
                STUDIO_SLACK_API_URL=f"{slack_root}/api/",
                OPENAI_API_KEY="sk-bench",
            ),
        )
    )
    baseline = stack.enter_context(
        child(
            [PYTHON, "-m", "bench.baseline_slack", str(baseline_port)],
            cwd=tmp,
            log=tmp / "baseline.log",
            env=base_env(
                BENCH_LLM_BASE=llm_base,
                BENCH_SLACK_API=f"{slack_root}/api/",
                BENCH_SLACK_TOKEN="xoxb-baseline",
                BENCH_SLACK_SECRET=SECRET,
                OPENAI_API_KEY="sk-bench",
            ),
        )
    )
    return platform, baseline, platform_port, baseline_port


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-slack-")))
        llm, llm_base = await model_server(stack, tmp)
        fake, slack_root = await _fake_slack(stack, tmp)
        key = await asyncio.to_thread(_workspace_key, tmp)
        platform, baseline, platform_port, baseline_port = _start(stack, tmp, llm_base, slack_root)
        await wait_http(f"http://{HOST}:{platform_port}/healthz", platform)
        await wait_http(f"http://{HOST}:{baseline_port}/healthz", baseline)
        await _setup_platform(f"http://{HOST}:{platform_port}", key)
        a = Side(
            "platform",
            f"http://{HOST}:{platform_port}/slack/events",
            "xoxb-platform",
            platform,
            slack_root,
            prefix=1,
        )
        b = Side(
            "baseline",
            f"http://{HOST}:{baseline_port}/slack/events",
            "xoxb-baseline",
            baseline,
            slack_root,
            prefix=2,
        )

        connector = connections(CONCURRENCY * 4)
        async with aiohttp.ClientSession(connector=connector) as http:
            for side in (a, b):  # both answer before anything is timed
                if await side.event(http, FIRST_ANSWER_S) is None:
                    raise RuntimeError(
                        f"{side.name} does not answer: {side.first_error}\n{side.proc.log_tail()}"
                    )
            report.begin("the throughput phases")
            for letter in ORDER:
                await _throughput(a if letter == "A" else b, http)
            report.add(*_throughput_figures(a, b))
            report.begin("the sequential events")
            count = await _sequential(a, b, http, report)
            report.add(*_sequential_figures(a, b, count))
            counts = {side.name: await side.answers(http) for side in (a, b)}
        print(
            f"# CPU s: llm {llm.cpu_seconds():.1f}, fake slack {fake.cpu_seconds():.1f}; "
            f"fake counts {counts}",
            file=sys.stderr,
        )
    report.add(*(_errors(side, counts.get(side.name, {})) for side in (a, b)))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _throughput_figures(a: Side, b: Side) -> list[Figure]:
    how_eps = (
        f"{CONCURRENCY} signed message events in flight (sent, not yet answered) over "
        f"{THREADS} threads of one channel (bot history {HISTORY}; the baseline, bare slack-bolt "
        "+ litellm, sends system + user only); answers counted at the fake Web API's "
        f"chat.postMessage per token; {WARMUP_S:g} s warm-up + {MEASURE_S:g} s measured per "
        f"phase, phases {ORDER} (A platform, B baseline); mean of phases"
    )
    how_cpu = "server process user+sys CPU during measured phases / answers posted"
    ratio = round(_mean(a.rates) / _mean(b.rates), 3)
    figures = [Figure("slack_throughput_ratio", ratio, "", ">= 0.8", how_eps)]
    for side in (a, b):
        phases = ", ".join(f"{r:.1f}" for r in side.rates)
        figures.append(
            Figure(
                f"slack_{side.name}_eps",
                round(_mean(side.rates), 1),
                "events/s",
                "",
                f"answers posted per second, phases {phases}",
            )
        )
        if side.loaded_ack_ms:
            figures.append(
                Figure(
                    f"slack_{side.name}_ack_p99_loaded_ms",
                    round(percentile(side.loaded_ack_ms, 0.99), 2),
                    "ms",
                    "",
                    f"p99 ack during the measured throughput phases ({CONCURRENCY} in flight)",
                )
            )
        if side.cpu_ms_per_event:
            cpu = round(_mean(side.cpu_ms_per_event), 2)
            figures.append(Figure(f"slack_{side.name}_cpu_ms_per_event", cpu, "ms", "", how_cpu))
    return figures


def _sequential_figures(a: Side, b: Side, count: int) -> list[Figure]:
    how_seq = (
        f"concurrency 1, {count} events per side after {ACK_WARMUP} warm-up, each sent "
        "after the previous was answered, sides alternating event by event; client-side wall time"
    )
    q = {
        (side.name, what, p): percentile(values, p)
        for side in (a, b)
        for what, values in (("ack", side.ack_ms), ("answer", side.answer_ms))
        for p in (0.5, 0.99)
    }
    figures = [
        Figure(
            "slack_ack_p99_ms",
            round(q["platform", "ack", 0.99], 2),
            "ms",
            "<= 50",
            "p99 of the platform's HTTP response to POST /slack/events (the ack); " + how_seq,
        ),
        Figure(
            "slack_ack_p50_ms",
            round(q["platform", "ack", 0.5], 2),
            "ms",
            "",
            "p50 of the platform's ack; " + how_seq,
        ),
    ]
    for side in (a, b):
        if side is b:
            figures += [
                Figure(
                    "slack_baseline_ack_p50_ms",
                    round(q["baseline", "ack", 0.5], 2),
                    "ms",
                    "",
                    how_seq,
                ),
                Figure(
                    "slack_baseline_ack_p99_ms",
                    round(q["baseline", "ack", 0.99], 2),
                    "ms",
                    "",
                    how_seq,
                ),
            ]
        figures += [
            Figure(
                f"slack_{side.name}_answer_p50_ms",
                round(q[side.name, "answer", 0.5], 2),
                "ms",
                "",
                "event sent -> its answer at chat.postMessage; " + how_seq,
            ),
            Figure(
                f"slack_{side.name}_answer_p99_ms",
                round(q[side.name, "answer", 0.99], 2),
                "ms",
                "",
                "event sent -> its answer at chat.postMessage; " + how_seq,
            ),
        ]
    return figures


def _errors(side: Side, seen: dict[str, int]) -> Figure:
    extra = ""
    if seen.get("thinking") or seen.get("other"):
        extra = (
            f"; also {seen.get('thinking', 0)} 'thinking' placeholders and "
            f"{seen.get('other', 0)} other posts"
        )
    return Figure(
        f"slack_{side.name}_errors",
        side.errors,
        "",
        "<= 0",
        f"{side.bad_acks} non-200 acks + {side.missing} answers not posted within "
        f"{ANSWER_WAIT_S:g} s, of {side.sent} events sent"
        + extra
        + (f"; first: {side.first_error[:120]}" if side.first_error else ""),
    )
