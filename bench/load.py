"""What the load-generating comparisons share (bench_web, bench_openai, bench_slack,
bench_telegram, bench_whatsapp): the processes (the platform's `main.py serve`, a hand-written
baseline), the bench bot set up through REST, a side that posts webhooks and waits for each
answer at a fake platform API, the saturation driver and its phase timing, priming, sequential
requests alternating between the sides, and the figures built the same way."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp

from bench.common import (
    FIRST_ANSWER_S,
    PYTHON,
    ROOT,
    TIMEOUT,
    Child,
    Figure,
    Report,
    base_env,
    calibrated,
    child,
    mean,
)

BOT = "bench-bot"

# -- the processes -----------------------------------------------------------------------------


def data_env(data: Path) -> dict[str, str]:
    """The platform's settings for its data in `data` (SQLite at `data/studio.db`)."""
    return {
        "STUDIO_DATA_DIR": str(data),
        "STUDIO_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'studio.db'}",
    }


def platform_server(
    stack: ExitStack, tmp: Path, port: int, *, data: str = "data", log: str = "platform", **env: str
) -> Child:
    """`main.py serve` on `port` for the life of `stack`, run in `tmp` (no .env from the
    repository), its data in `tmp/DATA`, its output in `tmp/LOG.log`; `OPENAI_API_KEY` a dummy,
    plus `env`."""
    return stack.enter_context(
        child(
            [PYTHON, str(ROOT / "main.py"), "serve", "--port", str(port)],
            cwd=tmp,  # no .env from the repository
            log=tmp / f"{log}.log",
            env=base_env(**data_env(tmp / data), OPENAI_API_KEY="sk-bench", **env),
        )
    )


def baseline_server(stack: ExitStack, tmp: Path, module: str, port: int, **env: str) -> Child:
    """A hand-written baseline, `python -m MODULE PORT`, for the life of `stack`: run in `tmp`,
    its output in `tmp/baseline.log`, `base_env` plus `env`."""
    return stack.enter_context(
        child(
            [PYTHON, "-m", module, str(port)],
            cwd=tmp,
            log=tmp / "baseline.log",
            env=base_env(**env),
        )
    )


# -- the bench bot through REST ----------------------------------------------------------------


def api_session(key: str, **kwargs: Any) -> aiohttp.ClientSession:
    """A client of the platform's REST API with the team key `key`."""
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    return aiohttp.ClientSession(headers=headers, timeout=TIMEOUT, **kwargs)


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> Any:
    async with http.get(url, params=params, timeout=TIMEOUT) as response:
        return await response.json(content_type=None)


async def post_json(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Any:
    async with http.post(url, data=json.dumps(body)) as response:
        data = await response.json(content_type=None)
        if response.status >= 300:
            raise RuntimeError(f"POST {url}: {response.status} {data}")
        return data


async def make_bench_bot(http: aiohttp.ClientSession, base: str, history: int) -> None:
    """Import the bench bot (the fake model, `history` turns) and promote it to production."""
    spec = {"name": BOT, "model": "openai/fake", "history": history}
    await post_json(http, f"{base}/api/v1/bots/import", spec)
    for env in ("staging", "production"):
        await post_json(http, f"{base}/api/v1/bots/{BOT}/promote", {"to": env})


async def deploy(http: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> str:
    """Deploy the bench bot (`body`: channel, target, credentials): the deployment id."""
    return str((await post_json(http, f"{base}/api/v1/bots/{BOT}/deployments", body))["id"])


async def deploy_bench_bot(base: str, key: str, history: int, body: dict[str, Any]) -> str:
    """Import, promote to production and deploy (`body`) the bench bot: the deployment id."""
    async with api_session(key) as http:
        await make_bench_bot(http, base, history)
        return await deploy(http, base, body)


# -- a side that posts webhooks ----------------------------------------------------------------


@dataclass(slots=True)
class WebhookSide:
    """One side of a channel comparison: its webhook, the fake platform API its answers reach,
    its conversations (one message in flight in each at a time, taken in turn), and what it did.

    A channel's subclass builds a conversation's next request and names the side (`who`) and a
    conversation at the fake, whose `GET /count?WHO` counts the side's answers and
    `GET /wait?WHO&CONVERSATION&n=N&timeout=S` answers once the conversation has N answers."""

    noun: ClassVar[str] = "message"  # what one request is called in messages
    refused: ClassVar[str] = "webhook"  # names a non-200 answer to the request
    # The answer's time is its arrival at the fake (time.monotonic there: the same clock); else
    # when the load generator learns of it.
    timed_at_fake: ClassVar[bool] = True

    name: str
    url: str
    proc: Child
    fake: str  # the fake platform API's root URL
    size: int  # conversations
    wait_s: float  # the default time an answer may take
    free: deque[int] = field(default_factory=deque)
    answered: list[int] = field(default_factory=list)  # answers seen per conversation
    sent: int = 0
    bad_acks: int = 0
    missing: int = 0
    not_offered: int = 0  # open loop: no idle conversation at a message's time
    first_error: str = ""
    rates: list[float] = field(default_factory=list)  # throughput phases
    cpu: list[float] = field(default_factory=list)  # CPU ms per answer, per phase
    ack_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answered = [0] * self.size
        self.free.extend(range(self.size))

    @property
    def errors(self) -> int:
        return self.bad_acks + self.missing

    def request(self, slot: int) -> tuple[bytes, dict[str, str]]:
        """The next message in conversation `slot`: body and headers."""
        raise NotImplementedError

    def who(self) -> dict[str, str]:
        """The side at the fake (query parameters)."""
        raise NotImplementedError

    def conversation(self, slot: int) -> dict[str, str]:
        """Conversation `slot` at the fake (query parameters, besides `who`)."""
        raise NotImplementedError

    def missed(self, slot: int, wait_s: float) -> str:
        """What to say of an answer that did not come."""
        raise NotImplementedError

    async def event(
        self, http: aiohttp.ClientSession, wait_s: float | None = None
    ) -> tuple[float, float] | None:
        """One message in a conversation with nothing in flight, until its answer reaches the
        fake: (ack ms, answer ms), or None if the webhook did not answer 200 or no answer came
        within `wait_s` (default: the side's)."""
        wait_s = self.wait_s if wait_s is None else wait_s
        slot = self.free.popleft()
        self.sent += 1
        body, headers = self.request(slot)
        # Ask the fake first, so the answer time is not stretched by a late question.
        waiting = asyncio.create_task(self._answer(http, slot, wait_s))
        started = time.monotonic()
        try:
            async with http.post(self.url, data=body, headers=headers, timeout=TIMEOUT) as response:
                text = await response.text()
                ack = time.monotonic() - started
                if response.status != 200:
                    waiting.cancel()
                    self.bad_acks += 1
                    self._failed(f"{self.refused} {response.status} {text[:200]}")
                    return None
            at = await waiting
            if at is None:
                self.missing += 1
                self._failed(self.missed(slot, wait_s))
                return None
            if not self.timed_at_fake:
                at = time.monotonic()
            return ack * 1000, (at - started) * 1000
        except (aiohttp.ClientError, TimeoutError) as exc:
            waiting.cancel()
            self.bad_acks += 1
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        finally:
            self.free.append(slot)

    async def _answer(self, http: aiohttp.ClientSession, slot: int, wait_s: float) -> float | None:
        """The conversation's next answer: its arrival time at the fake (0.0 if the side does not
        time answers there), or None if it did not come within `wait_s`."""
        params = {
            **self.who(),
            **self.conversation(slot),
            "n": str(self.answered[slot] + 1),
            "timeout": str(wait_s),
        }
        try:
            async with http.get(f"{self.fake}/wait", params=params, timeout=TIMEOUT) as resp:
                data = await resp.json(content_type=None)
                self.answered[slot] = int(data["count"])  # a late answer shifts no later one
                if resp.status != 200:
                    return None
                return float(data["at"]) if self.timed_at_fake else 0.0
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            return None

    async def answers(self, http: aiohttp.ClientSession) -> dict[str, int]:
        """What the fake counted for this side so far."""
        async with http.get(f"{self.fake}/count", params=self.who(), timeout=TIMEOUT) as response:
            return dict(await response.json(content_type=None))

    def record(self, phase: Phase) -> None:
        """A throughput phase of this side."""
        self.rates.append(phase.rate)
        if phase.cpu_ms is not None:
            self.cpu.append(phase.cpu_ms)

    def _failed(self, why: str) -> None:
        if not self.first_error:
            self.first_error = why
            print(f"# {self.name}: {self.noun} failed: {why}", file=sys.stderr, flush=True)


async def first_answers(sides: Sequence[WebhookSide], http: aiohttp.ClientSession) -> None:
    """One message to each side, which must be answered (the first one imports and builds what
    later ones reuse) before anything is timed."""
    for side in sides:
        if await side.event(http, FIRST_ANSWER_S) is None:
            raise RuntimeError(
                f"{side.name} does not answer: {side.first_error}\n{side.proc.log_tail()}"
            )


# -- driving the load --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """The shape of a saturation phase: requests in flight, then seconds of warm-up and seconds
    measured."""

    concurrency: int
    warmup_s: float
    measure_s: float


@dataclass(frozen=True, slots=True)
class Alternation:
    """Sequential requests alternating between two sides: `warmup` pairs, then as many per side
    as fit in `budget_s` at the warm-up's pace, within [least, most]."""

    warmup: int
    budget_s: float
    least: int
    most: int


@dataclass(slots=True)
class Phase:
    """A measured throughput phase: completions per second, the side's CPU ms per completion
    (None: none), and a fake's CPU share (CPU s / wall s; None: not watched)."""

    rate: float
    cpu_ms: float | None
    fake_share: float | None = None


async def saturate(
    send: Callable[[], Awaitable[object]],
    proc: Child,
    load: Load,
    *,
    completed: Callable[[], Awaitable[int]] | None = None,
    on_measured: Callable[[Any], None] | None = None,
    fake: Child | None = None,
) -> Phase:
    """`load.concurrency` workers calling `send` over and over for its warm-up + measured time.

    Completions in the measured part are counted by `completed` (a running total, read before
    and after it: answers counted at a fake) or else as the calls of `send` that returned a true
    value while measuring (each passed to `on_measured`). The CPU time of `proc` (and of `fake`)
    is read at the same points."""
    done = 0
    measuring = False
    stop = False

    async def worker() -> None:
        nonlocal done
        while not stop:
            result = await send()
            if result and measuring:
                done += 1
                if on_measured is not None:
                    on_measured(result)

    tasks = [asyncio.create_task(worker()) for _ in range(load.concurrency)]
    try:
        await asyncio.sleep(load.warmup_s)
        before = await completed() if completed is not None else 0
        cpu_before = proc.cpu_seconds()
        fake_before = fake.cpu_seconds() if fake is not None else 0.0
        measuring, started = True, time.monotonic()
        await asyncio.sleep(load.measure_s)
        after = await completed() if completed is not None else 0
        measuring, elapsed = False, time.monotonic() - started
        cpu = proc.cpu_seconds() - cpu_before
        fake_cpu = fake.cpu_seconds() - fake_before if fake is not None else 0.0
        stop = True
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    if completed is not None:
        done = after - before
    share = fake_cpu / elapsed if fake is not None else None
    return Phase(done / elapsed, cpu * 1000 / done if done else None, share)


async def webhook_phase(
    side: WebhookSide,
    http: aiohttp.ClientSession,
    load: Load,
    *,
    fake: Child | None = None,
    on_measured: Callable[[Any], None] | None = None,
) -> Phase:
    """`saturate` a webhook side: answers per second counted at the fake."""

    async def answers() -> int:
        return (await side.answers(http))["answers"]

    return await saturate(
        lambda: side.event(http),
        side.proc,
        load,
        completed=answers,
        on_measured=on_measured,
        fake=fake,
    )


async def prime(send: Callable[[], Awaitable[object]], count: int, concurrency: int) -> None:
    """`count` calls of `send`, `concurrency` at a time (a side's conversations are taken in
    turn, so each gets its first message before anything is timed)."""
    left = count

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


S = TypeVar("S")


async def alternating(
    a: S,
    b: S,
    send: Callable[[S], Awaitable[object]],
    measure: Callable[[S], Awaitable[None]],
    shape: Alternation,
    report: Report,
    what: str,
) -> int:
    """One request at a time, alternating sides request by request (ABBA...): `shape.warmup`
    pairs through `send`, then as many measured ones per side (`measure`) as fit in its budget at
    the warm-up's pace: how many. `what` names a request in what is said of the pace."""
    started = time.monotonic()
    for _ in range(shape.warmup):
        await send(a)
        await send(b)
    pair_s = (time.monotonic() - started) / shape.warmup
    count = calibrated(shape.budget_s, pair_s, least=shape.least, most=shape.most)
    report.needs(count * pair_s, f"{what} to each side took {pair_s * 1000:.0f} ms")
    for i in range(count):
        for side in (a, b) if i % 2 == 0 else (b, a):
            await measure(side)
    return count


# -- figures -----------------------------------------------------------------------------------


def ratio(platform: Sequence[float], baseline: Sequence[float]) -> float:
    """Mean platform rate / mean baseline rate, as the ratio figures round it."""
    return round(mean(platform) / mean(baseline), 3)


def rate_figure(name: str, rates: Sequence[float], unit: str, how: str) -> Figure:
    """The mean of a side's phase rates; `{phases}` in `how` lists them."""
    phases = ", ".join(f"{r:.1f}" for r in rates)
    return Figure(name, round(mean(rates), 1), unit, "", how.replace("{phases}", phases))


def cpu_figure(name: str, cpu_ms: Sequence[float], how: str) -> list[Figure]:
    """The mean CPU ms per completion of a side's phases, if any phase completed anything."""
    return [Figure(name, round(mean(cpu_ms), 2), "ms", "", how)] if cpu_ms else []
