"""Time to the first word on Telegram: what the platform adds to the model's own time to first
token before an end user sees the start of the answer as a message draft (`sendMessageDraft`).

Processes on loopback: the model server (`bench.llm_server --first-chunk-after 1.0 --word-every
0.01`: the stream's headers at once, its first word 1.0 s later, the four others 10 ms apart), the
fake Bot API (`bench.telegram_server`, which stamps each call's arrival with time.monotonic) and
the platform (`main.py serve` in webhook mode, as `bench.bench_telegram` starts it: a bot with
history 10 deployed to Telegram with its own token, its webhook secret read from the fake's
`setWebhook`).

Why a slow model: drafts show nothing for their first 0.8 s (`adapters.telegram.drafts`; a
quicker answer is sent whole, with no draft before it), so with the zero-latency model there is no
draft to time. With the first token at 1.0 s the first draft carrying text follows the token
itself, not the 0.8 s timer: the preview opens before the model is called, so its timer has run
out (and its typing indicator has gone) by the time the first word comes. The words after it are
10 ms apart so that the answer, whose sending closes the draft, does not overtake the first draft.

One sample pair: a webhook update, a private chat's text message (a new chat each time: drafts
are for private chats, and each turn starts a conversation, as `bench_stream` does on the web),
posted with the secret header; the platform's time is from just before the POST to the arrival at
the fake of the chat's first `sendMessageDraft` carrying text (or of the answer's `sendMessage`,
should the answer come first: the first text the end user sees; how often is said), both read
with time.monotonic (CLOCK_MONOTONIC: one clock for every process of the machine). Then the same
streamed completion is asked of the model server directly, and timed at the client to the first
chunk carrying text, the stream read to its end as the platform reads it. The added time is the
platform's time minus the model's, pair by pair; p50 and p99 over REQUESTS pairs after WARMUP.

Each request takes over a second, so requests overlap, on a fixed schedule (open loop): a
platform request every PERIOD_S (0.6 s), a direct one DIRECT_AT_S (0.3 s) after each; about two
of each are in flight. Nothing is shared between them (a chat each, nothing kept by the bench) and
the schedule keeps the moments where any process works apart. Over a period: platform updates
arrive at 0.0 (their handling up to the model call takes some 5-10 ms); direct requests' first
tokens at 0.1 (their other words until 0.15); the platform's typing calls (0.8 s into a turn) at
0.2; direct requests start at 0.3; the platform's first tokens and drafts at ~0.4 + its pre-model
time, its other words and its answer until ~0.5. So every measured moment is 60 ms or more from
any other request's work on an unloaded machine, and the figure is what one request at a time
would see, in about a minute instead of four. (Checked once against one request at a time,
PERIOD_S 2.4 s, 40 pairs, runs interleaved on a loaded machine: 20.6 and 12.7 ms one at a time,
14.6 and 14.3 ms on the schedule.)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.bench_stream import _has_text
from bench.bench_telegram import (
    _api,
    _deploy,
    _fake_telegram,
    _headers,
    _make_bot,
    _platform,
    bot_token,
    update,
)
from bench.common import (
    FIRST_ANSWER_S,
    PYTHON,
    TIMEOUT,
    Figure,
    Report,
    base_env,
    child,
    connections,
    percentile,
    wait_file,
    wait_http,
)
from bench.load import get_json

FIRST_CHUNK_AFTER_S = 1.0  # the model's own time to first token: drafts wait 0.8 s
WORD_EVERY_S = 0.01  # the answer's other words
PERIOD_S = 0.6  # between platform requests (and between direct ones)
DIRECT_AT_S = 0.3  # a direct request this long after each platform request
LEAD_S = 0.1  # a request's waiting at the fake is set up this long before it is sent
WARMUP = 10  # pairs, not measured
REQUESTS = 100  # pairs measured
SHOWN_WAIT_S = 10.0  # no text shown in a chat by then: the request failed
CHAT_BASE = 700_000  # private chats (positive ids), a new one per request
# Unloaded: start-up and the first answer ~20 s, the schedule 66 s.
BUDGET_S = 25 + (WARMUP + REQUESTS) * PERIOD_S
FIGURES = (
    "ttft_added_telegram_ms",
    "ttft_added_telegram_p99_ms",
    "ttft_telegram_platform_p50_ms",
    "ttft_telegram_model_p50_ms",
)
_ASK = {"model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@dataclass(slots=True)
class Platform:
    """The deployed bot's webhook, its secret and token at the fake, and what it did."""

    url: str
    secret: str
    token: str
    fake: str
    failed: int = 0
    first_error: str = ""

    async def first_text(
        self, http: aiohttp.ClientSession, chat: int, at: float, wait_s: float = SHOWN_WAIT_S
    ) -> tuple[float, str] | None:
        """At `at` (time.monotonic), a text message in the private chat `chat`: milliseconds
        to the first text shown there at the fake, and the method that showed it; None if it
        failed (the failure is kept)."""
        body = update(chat, f"question {chat}: how do refunds work?")
        params = {"token": self.token, "chat": str(chat), "timeout": str(wait_s)}
        waiting = asyncio.create_task(get_json(http, f"{self.fake}/shown", **params))
        await _sleep_until(at)
        started = time.monotonic()
        try:
            async with http.post(self.url, data=body, headers=_headers(self.secret)) as response:
                if response.status != 200:
                    waiting.cancel()
                    self._failed(f"webhook {response.status}: {await response.text()}")
                    return None
            shown: dict[str, Any] = await waiting
        except (aiohttp.ClientError, TimeoutError) as exc:
            waiting.cancel()
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        if "at" not in shown:
            self._failed(f"no text shown in chat {chat} within {wait_s:g} s")
            return None
        return (float(shown["at"]) - started) * 1000, str(shown["via"])

    def _failed(self, why: str) -> None:
        self.failed += 1
        if not self.first_error:
            self.first_error = why
            print(f"# platform request failed: {why}", file=sys.stderr, flush=True)


async def _sleep_until(at: float) -> None:
    delay = at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _model_first_text(http: aiohttp.ClientSession, url: str, at: float) -> float:
    """At `at`, the streamed completion asked of the model server: milliseconds to the first
    chunk carrying text, read at the client; the stream is read to its end."""
    await _sleep_until(at)
    started = time.monotonic()
    first: float | None = None
    async with http.post(url, json=_ASK, headers={"Authorization": "Bearer sk-bench"}) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: {response.status} {await response.text()}")
        async for raw in response.content:
            if first is None and _has_text(raw.decode().strip()):
                first = (time.monotonic() - started) * 1000
    if first is None:
        raise RuntimeError(f"{url}: the stream ended without text")
    return first


async def _slow_model(stack: ExitStack, tmp: Path) -> str:
    """`bench.llm_server` with its first chunk after FIRST_CHUNK_AFTER_S: its `/v1` base URL."""
    port_file = tmp / "llm.port"
    args = [str(port_file), "--first-chunk-after", str(FIRST_CHUNK_AFTER_S)]
    llm = stack.enter_context(
        child(
            [PYTHON, "-m", "bench.llm_server", *args, "--word-every", str(WORD_EVERY_S)],
            env=base_env(),
            log=tmp / "llm.log",
        )
    )
    return f"http://127.0.0.1:{await wait_file(port_file, llm)}/v1"


async def _deployed(base: str, key: str, fake: str) -> Platform:
    """The bench bot in production, deployed to Telegram with its own token."""
    await _make_bot(base, key)
    token = bot_token(1)
    async with _api(key) as http:
        deployment = await _deploy(http, base, token)
        hook = await get_json(http, f"{fake}/webhook", token=token)
    if not str(hook.get("url", "")).endswith(f"/telegram/bots/{deployment}"):
        raise RuntimeError(f"the platform set no webhook for {deployment}: {hook}")
    return Platform(f"{base}/telegram/bots/{deployment}", str(hook["secret_token"]), token, fake)


Pair = tuple[tuple[float, str] | None, float]


async def _schedule(side: Platform, http: aiohttp.ClientSession, direct: str) -> list[Pair]:
    """WARMUP + REQUESTS pairs on the schedule: per pair, the platform's (ms, the method that
    showed the text first) or None, and the model's ms."""
    pairs: list[asyncio.Task[Pair]] = []

    async def pair(n: int, at: float) -> Pair:
        platform = asyncio.create_task(side.first_text(http, CHAT_BASE + n, at))
        model = await _model_first_text(http, direct, at + DIRECT_AT_S)
        return await platform, model

    start = time.monotonic() + LEAD_S
    for n in range(WARMUP + REQUESTS):
        at = start + n * PERIOD_S
        await _sleep_until(at - LEAD_S)
        pairs.append(asyncio.create_task(pair(n, at)))
    return list(await asyncio.gather(*pairs))


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stream-tg-")))
        llm_base = await _slow_model(stack, tmp)
        fake, fake_url = await _fake_telegram(stack, tmp)
        proc, base = _platform(stack, tmp, "platform", llm_base, fake_url)
        await wait_http(f"{base}/healthz", proc)
        key = (tmp / "platform" / "local.key").read_text().strip()
        side = await _deployed(base, key, fake_url)
        direct = f"{llm_base}/chat/completions"
        async with aiohttp.ClientSession(timeout=TIMEOUT, connector=connections(32)) as http:
            report.begin("the first answer")  # imports, the first model call: not timed
            first = await side.first_text(http, CHAT_BASE - 1, time.monotonic(), FIRST_ANSWER_S)
            if first is None:
                raise RuntimeError(f"no answer: {side.first_error}\n{proc.log_tail()}")
            if first[1] != "sendMessageDraft":
                raise RuntimeError(
                    f"the platform sent no draft before its answer:\n{proc.log_tail()}"
                )
            await _model_first_text(http, direct, time.monotonic())
            report.begin(f"{WARMUP} + {REQUESTS} scheduled request pairs")
            cpu = proc.cpu_seconds()
            started = time.monotonic()
            pairs = await _schedule(side, http, direct)
            took = time.monotonic() - started
            cpu = proc.cpu_seconds() - cpu
            answers = await _answers(http, fake_url, side.token, 1 + WARMUP + REQUESTS)
        print(
            f"# schedule took {took:.1f} s ({(WARMUP + REQUESTS) * PERIOD_S:.0f} s planned); "
            f"platform CPU {cpu * 1000 / (WARMUP + REQUESTS):.1f} ms a turn; fake Bot API CPU "
            f"{fake.cpu_seconds():.1f} s; load {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
            flush=True,
        )
    measured = [(p[0], m) for p, m in pairs[WARMUP:] if p is not None]
    if len(measured) < REQUESTS // 2:
        raise RuntimeError(f"{REQUESTS - len(measured)} requests failed: {side.first_error}")
    platform_ms = [p for p, _ in measured]
    model_ms = [m for _, m in measured]
    added = [p - m for p, m in measured]
    drafts = sum(1 for p, _ in pairs[WARMUP:] if p is not None and p[1] == "sendMessageDraft")
    how = (
        f"{len(measured)} webhook updates (of {REQUESTS} after {WARMUP} warm-up; "
        f"{REQUESTS - len(measured)} failed) to a bot deployed to Telegram (history 10, a new "
        f"private chat each), the model's first token {FIRST_CHUNK_AFTER_S:g} s after the request "
        f"(the rest {WORD_EVERY_S * 1000:g} ms a word: drafts show nothing before 0.8 s), each "
        "paired with the same streamed completion asked of the model server directly; platform: "
        "update POSTed -> first sendMessageDraft carrying text at the fake Bot API "
        f"(time.monotonic in both processes; the first text came by draft {drafts} times, by the "
        f"answer itself {len(measured) - drafts} times); model: client-side time to the first "
        f"text; requests overlap on a fixed schedule (a platform request every {PERIOD_S:g} s, a "
        f"direct one {DIRECT_AT_S:g} s after each) that keeps every measured moment >= 60 ms "
        f"from other requests' work on an unloaded machine; {answers} answers sent; platform CPU "
        f"{cpu * 1000 / (WARMUP + REQUESTS):.1f} ms a turn"
    )
    report.add(
        Figure(
            "ttft_added_telegram_ms",
            round(percentile(added, 0.5), 2),
            "ms",
            "<= 5",
            "p50 of (platform - model) per pair; " + how,
        ),
        Figure(
            "ttft_added_telegram_p99_ms",
            round(percentile(added, 0.99), 2),
            "ms",
            "",
            "p99 of (platform - model) per pair; as ttft_added_telegram_ms",
        ),
        Figure(
            "ttft_telegram_platform_p50_ms",
            round(percentile(platform_ms, 0.5), 2),
            "ms",
            "",
            "update POSTed -> first draft text at the fake, p50; as ttft_added_telegram_ms",
        ),
        Figure(
            "ttft_telegram_model_p50_ms",
            round(percentile(model_ms, 0.5), 2),
            "ms",
            "",
            "the model server asked directly, time to first text at the client, p50; as "
            "ttft_added_telegram_ms",
        ),
    )


async def _answers(http: aiohttp.ClientSession, fake: str, token: str, sent: int) -> int:
    """The answers (`sendMessage`) the fake has seen for `token`, once all `sent` came or
    SHOWN_WAIT_S has passed."""
    deadline = time.monotonic() + SHOWN_WAIT_S
    while True:
        got = int((await get_json(http, f"{fake}/count", token=token))["answers"])
        if got >= sent or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)
