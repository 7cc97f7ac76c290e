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
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import aiohttp

from bench.common import (
    HOST,
    PYTHON,
    ROOT,
    Child,
    Figure,
    Report,
    base_env,
    connections,
    fake_server,
    free_port,
    model_server,
    percentile,
    wait_http,
)
from bench.load import (
    Alternation,
    Load,
    WebhookSide,
    alternating,
    baseline_server,
    cpu_figure,
    data_env,
    deploy_bench_bot,
    first_answers,
    platform_server,
    rate_figure,
    ratio,
    webhook_phase,
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
SATURATION = Load(CONCURRENCY, WARMUP_S, MEASURE_S)
SEQUENTIAL = Alternation(ACK_WARMUP, ACK_BUDGET_S, ACK_LEAST, ACK_EVENTS)
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


@dataclass(slots=True, kw_only=True)
class Side(WebhookSide):
    """One side of the comparison: where events go, its token at the fake, its threads, and what
    it did."""

    noun: ClassVar[str] = "event"
    refused: ClassVar[str] = "ack"
    timed_at_fake: ClassVar[bool] = False  # the fake's /wait gives no time: wall time here
    token: str
    prefix: int  # keeps the sides' thread ts apart
    threads: list[str] = field(default_factory=list)
    loaded_ack_ms: list[float] = field(default_factory=list)  # during measured throughput phases

    def __post_init__(self) -> None:
        WebhookSide.__post_init__(self)
        self.threads = [f"1600000000.{self.prefix}{k:05d}" for k in range(THREADS)]

    def request(self, slot: int) -> tuple[bytes, dict[str, str]]:
        text = f"question {self.sent}: how do refunds work?"
        body = event_body(text, thread_ts=self.threads[slot])
        return body, sign(body, SECRET)

    def who(self) -> dict[str, str]:
        return {"token": self.token}

    def conversation(self, slot: int) -> dict[str, str]:
        return {"thread": self.threads[slot]}

    def missed(self, slot: int, wait_s: float) -> str:
        return f"no answer posted in thread {self.threads[slot]} within {wait_s:g} s"


async def _throughput(side: Side, http: aiohttp.ClientSession) -> None:
    """CONCURRENCY events in flight for WARMUP_S + MEASURE_S; answers posted per second measured
    at the fake Web API, and the acks of the measured part."""
    loaded = side.loaded_ack_ms
    phase = await webhook_phase(side, http, SATURATION, on_measured=lambda r: loaded.append(r[0]))
    side.record(phase)
    print(f"# {side.name}: {phase.rate:.1f} events/s", file=sys.stderr, flush=True)


async def _sequential(a: Side, b: Side, http: aiohttp.ClientSession, report: Report) -> int:
    """One event at a time, each after the previous one was answered, alternating sides event
    by event (ABBA...), as many per side as fit in ACK_BUDGET_S at the warm-up's pace: how
    many."""

    async def measured(side: Side) -> None:
        result = await side.event(http)
        if result is not None:
            side.ack_ms.append(result[0])
            side.answer_ms.append(result[1])

    return await alternating(
        a, b, lambda side: side.event(http), measured, SEQUENTIAL, report, "an event"
    )


def _workspace_key(tmp: Path) -> str:
    """The owner key of the fake workspace's team, made before `serve` starts: only that team
    may deploy to the workspace's channels (the platform finds the team on first contact)."""
    result = subprocess.run(
        [PYTHON, str(ROOT / "main.py"), "team", "create", f"slack-{TEAM_ID.lower()}"],
        cwd=tmp,
        env=base_env(**data_env(tmp / "data")),
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
    platform = platform_server(
        stack,
        tmp,
        platform_port,
        STUDIO_LLM_API_BASE=llm_base,
        SLACK_BOT_TOKEN="xoxb-platform",
        SLACK_SIGNING_SECRET=SECRET,
        STUDIO_SLACK_API_URL=f"{slack_root}/api/",
    )
    baseline = baseline_server(
        stack,
        tmp,
        "bench.baseline_slack",
        baseline_port,
        BENCH_LLM_BASE=llm_base,
        BENCH_SLACK_API=f"{slack_root}/api/",
        BENCH_SLACK_TOKEN="xoxb-baseline",
        BENCH_SLACK_SECRET=SECRET,
        OPENAI_API_KEY="sk-bench",
    )
    return platform, baseline, platform_port, baseline_port


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-slack-")))
        llm, llm_base = await model_server(stack, tmp)
        fake, slack_root = await fake_server(stack, tmp, "bench.slack_server", "slack")
        key = await asyncio.to_thread(_workspace_key, tmp)
        platform, baseline, platform_port, baseline_port = _start(stack, tmp, llm_base, slack_root)
        await wait_http(f"http://{HOST}:{platform_port}/healthz", platform)
        await wait_http(f"http://{HOST}:{baseline_port}/healthz", baseline)
        await deploy_bench_bot(
            f"http://{HOST}:{platform_port}", key, HISTORY, {"channel": "slack", "target": CHANNEL}
        )
        a = Side(
            "platform",
            f"http://{HOST}:{platform_port}/slack/events",
            platform,
            slack_root,
            THREADS,
            ANSWER_WAIT_S,
            token="xoxb-platform",
            prefix=1,
        )
        b = Side(
            "baseline",
            f"http://{HOST}:{baseline_port}/slack/events",
            baseline,
            slack_root,
            THREADS,
            ANSWER_WAIT_S,
            token="xoxb-baseline",
            prefix=2,
        )

        connector = connections(CONCURRENCY * 4)
        async with aiohttp.ClientSession(connector=connector) as http:
            await first_answers((a, b), http)  # both answer before anything is timed
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


def _throughput_figures(a: Side, b: Side) -> list[Figure]:
    how_eps = (
        f"{CONCURRENCY} signed message events in flight (sent, not yet answered) over "
        f"{THREADS} threads of one channel (bot history {HISTORY}; the baseline, bare slack-bolt "
        "+ litellm, sends system + user only); answers counted at the fake Web API's "
        f"chat.postMessage per token; {WARMUP_S:g} s warm-up + {MEASURE_S:g} s measured per "
        f"phase, phases {ORDER} (A platform, B baseline); mean of phases"
    )
    how_cpu = "server process user+sys CPU during measured phases / answers posted"
    figures = [Figure("slack_throughput_ratio", ratio(a.rates, b.rates), "", ">= 0.8", how_eps)]
    for side in (a, b):
        how = "answers posted per second, phases {phases}"
        figures.append(rate_figure(f"slack_{side.name}_eps", side.rates, "events/s", how))
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
        figures += cpu_figure(f"slack_{side.name}_cpu_ms_per_event", side.cpu, how_cpu)
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
