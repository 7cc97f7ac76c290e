"""Telegram channel: webhook-to-answer throughput and platform-added latency against a
hand-written aiogram bot, and the memory of 10,000 deployed Telegram bots.

Processes on loopback: the zero-latency model (`bench.llm_server`), a fake Bot API
(`bench.telegram_server`, counting answers per token with their arrival time), the platform
(`main.py serve` in webhook mode, a bot with history 10 deployed with its own token) and
`bench/baseline_telegram.py` (bare aiogram + litellm, no storage). An update is a private-chat
text message posted to the side's webhook with its secret header; it is done when its answer
reaches `sendMessage` at the fake. The sides take turns (ABBA...) so drift on a shared machine
hits both: first at saturation (a fixed number of updates in flight), then open loop at half the
platform's saturation rate for the latency. The platform also takes throughput turns with a live
A/B test running on its production (phases C: half its end users hashed to a second version),
which shows what A/B assignment adds to a turn.

Then a second platform process, started with the others and idle until then, gets 1, 1,000 and
10,000 Telegram deployments (one token each; the first REST_DEPLOYS through the REST API, the
others written into its database by `python -m bench.bench_telegram insert`, because REST
deploys run at ~60/s here) and each answers one `/start` update, and its RSS is read.

On a slow machine the throughput phases still last their fixed time and the latency phase gets
fewer blocks (what fits in LAT_BUDGET_S at its rate); the fixed-size work (priming every chat,
10,000 deployments) is timed as it starts and the module's limit moves to fit the rest. Figures
are reported as each phase ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp

from bench.common import (
    FIRST_ANSWER_S,
    HOST,
    PYTHON,
    Child,
    Figure,
    Report,
    base_env,
    calibrated,
    child,
    connections,
    fake_server,
    free_port,
    mean,
    model_server,
    percentile,
    wait_http,
)
from bench.load import (
    Load,
    WebhookSide,
    api_session,
    baseline_server,
    cpu_figure,
    deploy,
    first_answers,
    get_json,
    make_bench_bot,
    platform_server,
    post_json,
    prime,
    rate_figure,
    ratio,
    webhook_phase,
)

CONCURRENCY = 16  # updates in flight per side: sent and not yet answered
# Private chats (conversations) per side, one update in flight per chat at a time, taken in turn:
# enough that no chat gets more than one message a second at these rates. That is Telegram's limit
# in a chat, which the platform's pacer keeps and the bare baseline ignores; people in a private
# chat do not type faster either. With 128 chats the pacer capped the platform at 128 updates/s.
CHATS = 1024
WARMUP_S = 1.0
MEASURE_S = 4.0
SATURATION = Load(CONCURRENCY, WARMUP_S, MEASURE_S)  # bench_whatsapp's too
# A = platform, B = baseline, C = platform with a live A/B test: three phases each, and each
# letter's positions add up to the same (0+5+7 = 1+3+8 = 2+4+6), so linear drift cancels.
ORDER = "ABCBCACAB"
AB_PERCENT = 50  # of the platform's end users on v2 while an A/B test runs (phases C)
LOAD = 0.5  # the latency phase offers this fraction of the platform's saturation rate
LAT_WARMUP = 30  # updates per side, not measured
LAT_BLOCK = 10  # updates per block (~0.2 s): a stall of the machine hits both sides
LAT_BLOCKS = 40  # blocks per side at most, alternating ABBA...: 400 measured updates per side
LAT_LEAST = 10  # blocks per side, however slow the machine: 100 measured updates per side
LAT_BUDGET_S = 8.0  # the measured blocks of both sides (about 7 s unloaded)
HISTORY = 10
MEMORY_STEPS = (1, 1_000, 10_000)  # deployments alive when RSS is read
# The memory phase's work in webhook updates, for its first estimate: a /start to each deployment
# of each step (a /start costs the platform about what a chat turn does; most deployments are
# written straight into its database, which costs little).
MEMORY_UPDATES = sum(MEMORY_STEPS)
REST_DEPLOYS = 100  # the first ones are made through REST (and timed), the others directly
REST_ONE_BY_ONE = 20  # of which these one at a time (after the first, which imports aiogram)
DEPLOY_CONCURRENCY = 32  # REST deploys in flight
FEED_BATCH = 100  # updates posted before waiting for their answers (memory phase)
SECRET = "bench-webhook-secret"  # the baseline's; the platform's comes from its setWebhook
PUBLIC_URL = "https://studio.bench.invalid"  # webhook mode; the fake never calls it
ANSWER_WAIT_S = 10.0  # an answer not sent by then is missing
# Unloaded: start-up ~10 s, priming 2 x ~4 s, throughput 30 s, latency ~8 s, memory ~45 s.
BUDGET_S = 10 + 8 + len(ORDER) * (WARMUP_S + MEASURE_S) + LAT_BUDGET_S + 45
FIGURES = (
    "telegram_throughput_ratio",
    "telegram_throughput_ratio_ab",
    "telegram_ab_vs_plain",
    "telegram_platform_ups",
    "telegram_platform_ab_ups",
    "telegram_platform_ab_cpu_ms_per_update",
    "telegram_platform_cpu_ms_per_update",
    "telegram_baseline_ups",
    "telegram_baseline_cpu_ms_per_update",
    "telegram_added_latency_p50_ms",
    "telegram_added_latency_p99_ms",
    "telegram_platform_p50_ms",
    "telegram_platform_p99_ms",
    "telegram_platform_ack_p99_ms",
    "telegram_baseline_p50_ms",
    "telegram_baseline_p99_ms",
    "telegram_baseline_ack_p99_ms",
    "telegram_platform_errors",
    "telegram_baseline_errors",
    "bots_empty_rss_mb",
    "bots_1_rss_mb",
    "bots_1k_rss_mb",
    "telegram_deploys_per_s",
    "bots_10k_rss_mb",
    "bots_rss_kb_per_bot",
    "bots_memory_errors",
)

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def bot_token(n: int) -> str:
    """A well-formed, deterministic BotFather token; its bot id is 300000000 + n."""
    digest = hashlib.sha512(f"bench-telegram-{n}".encode()).digest()
    return f"{300000000 + n}:AA" + "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:33])


def update(chat_id: int, text: str) -> bytes:
    """A webhook update: a person's text message in their private chat with the bot."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"}
    return json.dumps(
        {
            "update_id": next(_update_ids),
            "message": {
                "message_id": next(_message_ids),
                "from": person,
                "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
                "date": int(time.time()),
                "text": text,
            },
        }
    ).encode()


def _headers(secret: str) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}


@dataclass(slots=True, kw_only=True)
class Side(WebhookSide):
    """One side of the comparison: its webhook, its token at the fake, its private chats, and
    what it did."""

    noun: ClassVar[str] = "update"
    secret: str
    token: str
    chat_base: int
    offered: list[float] = field(default_factory=list)  # achieved offered rate per block

    def request(self, slot: int) -> tuple[bytes, dict[str, str]]:
        body = update(self.chat_base + slot, f"question {self.sent}: how do refunds work?")
        return body, _headers(self.secret)

    def who(self) -> dict[str, str]:
        return {"token": self.token}

    def conversation(self, slot: int) -> dict[str, str]:
        return {"chat": str(self.chat_base + slot)}

    def missed(self, slot: int, wait_s: float) -> str:
        return f"no answer in chat {self.chat_base + slot} in {wait_s:g} s"


# -- throughput and latency ------------------------------------------------------------------


async def _open_loop(
    side: Side, http: aiohttp.ClientSession, rate: float, count: int, *, measured: bool
) -> None:
    """`count` updates at `rate` per second whatever the answers (open loop), each in an idle
    chat; latencies recorded if `measured`."""
    results: list[asyncio.Task[tuple[float, float] | None]] = []
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if not side.free:
            side.not_offered += 1
            continue
        results.append(asyncio.create_task(side.event(http)))
    span = time.monotonic() - started
    for result in await asyncio.gather(*results):
        if result is not None and measured:
            side.ack_ms.append(result[0])
            side.answer_ms.append(result[1])
    if measured and count > 1:
        side.offered.append((count - 1) / span)


async def _latency(
    a: Side, b: Side, http: aiohttp.ClientSession, rate: float, report: Report, then_s: float
) -> int:
    """Blocks of LAT_BLOCK updates at `rate`, ABBA ABBA..., after a warm-up on each side, as
    many as fit in LAT_BUDGET_S at the warm-up's pace (`then_s`: what the module does after):
    how many blocks per side."""
    started = time.monotonic()
    for side in (a, b):
        await _open_loop(side, http, rate, LAT_WARMUP, measured=False)
    abba_s = (time.monotonic() - started) / (2 * LAT_WARMUP) * 4 * LAT_BLOCK
    rounds = calibrated(LAT_BUDGET_S, abba_s, least=LAT_LEAST // 2, most=LAT_BLOCKS // 2)
    report.needs(rounds * abba_s + then_s, f"latency blocks at {rate:.0f} updates/s")
    for _ in range(rounds):
        for side in (a, b, b, a):
            await _open_loop(side, http, rate, LAT_BLOCK, measured=True)
    return 2 * rounds


# -- the platform ------------------------------------------------------------------------------


def _api(key: str) -> aiohttp.ClientSession:
    return api_session(key, connector=connections(64))


async def _make_bot(base: str, key: str) -> None:
    """Import the bench bot and promote it to production as v1 (no deployment yet); v2, with
    another prompt, goes to staging (an A/B test's other version)."""
    async with _api(key) as http:
        await make_bench_bot(http, base, HISTORY)
        async with http.patch(
            f"{base}/api/v1/bots/bench-bot", data=json.dumps({"prompt": "Answer briefly."})
        ) as response:
            if response.status >= 300:
                raise RuntimeError(f"editing the bench bot: {response.status}")
        await post_json(http, f"{base}/api/v1/bots/bench-bot/promote", {"to": "staging"})


async def _ab_test(http: aiohttp.ClientSession, base: str, *, running: bool) -> None:
    """Start (v1, what production runs, against v2) or stop the bench bot's A/B test."""
    url = f"{base}/api/v1/bots/bench-bot/abtest"
    if running:
        await post_json(http, url, {"a": 1, "b": 2, "percent": AB_PERCENT})
    else:
        await post_json(http, f"{url}/stop", {})


async def _deploy(http: aiohttp.ClientSession, base: str, token: str) -> str:
    return await deploy(http, base, {"channel": "telegram", "token": token})


def _platform(
    stack: ExitStack, tmp: Path, name: str, llm_base: str, fake: str
) -> tuple[Child, str]:
    port = free_port()
    proc = platform_server(
        stack,
        tmp,
        port,
        data=name,
        log=name,
        STUDIO_LLM_API_BASE=llm_base,
        STUDIO_TELEGRAM_API_URL=fake,
        STUDIO_PUBLIC_URL=PUBLIC_URL,
    )
    return proc, f"http://{HOST}:{port}"


async def _fake_telegram(stack: ExitStack, tmp: Path) -> tuple[Child, str]:
    return await fake_server(stack, tmp, "bench.telegram_server", "telegram")


async def _compare(tmp: Path, llm_base: str, fake_url: str, report: Report) -> None:
    """Throughput (ABBAAB) then latency at LOAD of the platform's saturation rate; the
    platform's priming calibrates the limit for the rest of the module."""
    with ExitStack() as stack:
        platform, base = _platform(stack, tmp, "platform", llm_base, fake_url)
        baseline_port = free_port()
        baseline = baseline_server(
            stack,
            tmp,
            "bench.baseline_telegram",
            baseline_port,
            BENCH_LLM_BASE=llm_base,
            BENCH_TELEGRAM_API=fake_url,
            BENCH_TELEGRAM_TOKEN=bot_token(0),
            BENCH_TELEGRAM_SECRET=SECRET,
            OPENAI_API_KEY="sk-bench",
        )
        await wait_http(f"{base}/healthz", platform)
        await wait_http(f"http://{HOST}:{baseline_port}/healthz", baseline)
        key = (tmp / "platform" / "local.key").read_text().strip()
        await _make_bot(base, key)
        token = bot_token(1)
        async with _api(key) as http:
            deployment = await _deploy(http, base, token)
            hook = await get_json(http, f"{fake_url}/webhook", token=token)
        if not hook.get("url", "").endswith(f"/telegram/bots/{deployment}"):
            raise RuntimeError(f"the platform set no webhook for {deployment}: {hook}")
        a = Side(
            "platform",
            f"{base}/telegram/bots/{deployment}",
            platform,
            fake_url,
            CHATS,
            ANSWER_WAIT_S,
            secret=hook["secret_token"],
            token=token,
            chat_base=100_000,
        )
        b = Side(
            "baseline",
            f"http://{HOST}:{baseline_port}/telegram/webhook",
            baseline,
            fake_url,
            CHATS,
            ANSWER_WAIT_S,
            secret=SECRET,
            token=bot_token(0),
            chat_base=200_000,
        )
        connector = connections(CONCURRENCY * 4)
        async with aiohttp.ClientSession(connector=connector) as http:
            await first_answers((a, b), http)  # both answer before anything is timed
            report.begin("priming the chats")
            started = time.monotonic()
            # Every chat has its conversation before anything is timed (the first update, sent
            # before, went to chat 0).
            await prime(lambda: a.event(http), CHATS - 1, CONCURRENCY)
            ups = CHATS / (time.monotonic() - started)
            rest = CHATS / ups + len(ORDER) * (WARMUP_S + MEASURE_S) + LAT_BUDGET_S
            report.needs(rest + MEMORY_UPDATES / ups, f"the platform primed {ups:.0f} chats/s")
            await prime(lambda: b.event(http), CHATS - 1, CONCURRENCY)
            report.begin("the throughput phases")
            ab = Phases()
            async with _api(key) as api:
                for letter in ORDER:
                    side = b if letter == "B" else a
                    if letter == "C":
                        await _ab_test(api, base, running=True)
                    phase = await webhook_phase(side, http, SATURATION)
                    if letter == "C":
                        await _ab_test(api, base, running=False)
                    rates, cpus = (ab.rates, ab.cpu) if letter == "C" else (side.rates, side.cpu)
                    rates.append(phase.rate)
                    if phase.cpu_ms is not None:
                        cpus.append(phase.cpu_ms)
                    print(f"# {letter} {side.name}: {phase.rate:.1f} updates/s", file=sys.stderr)
            report.add(*_throughput_figures(a, b, ab))
            report.begin("the latency blocks")
            rate = LOAD * mean(a.rates)
            memory_s = MEMORY_UPDATES / mean(a.rates)
            blocks = await _latency(a, b, http, rate, report, memory_s)
            report.add(*_latency_figures(a, b, rate, blocks))
            counts = {side.name: await side.answers(http) for side in (a, b)}
    report.add(*(_errors(side, counts.get(side.name, {})) for side in (a, b)))


@dataclass(slots=True)
class Phases:
    """The platform's throughput phases with an A/B test running (C)."""

    rates: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


# -- memory ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Memory:
    empty_mb: float = 0.0
    rss_mb: dict[int, float] = field(default_factory=dict)  # deployments -> RSS, after /start
    deployed_rss_mb: dict[int, float] = field(default_factory=dict)  # the same, before /start
    one_by_one_s: float = 0.0  # wall time of REST_ONE_BY_ONE deploys, one at a time
    rest_deploys: int = 0  # the REST deploys made DEPLOY_CONCURRENCY at a time
    rest_s: float = 0.0  # their wall time
    rest_cpu_s: float = 0.0  # platform CPU during them
    direct: int = 0  # deployments written straight into the database
    feeds: int = 0
    feed_cpu_s: float = 0.0  # platform CPU answering the /start updates
    feed_s: float = 0.0
    errors: int = 0
    first_error: str = ""


async def _feed(
    http: aiohttp.ClientSession,
    base: str,
    fake_url: str,
    hooks: list[tuple[str, str]],
    wait_s: float,
) -> int:
    """A `/start` update to each (deployment id, webhook secret), FEED_BATCH at a time, each
    batch answered (any sendMessage) within `wait_s` before the next: how many were not."""
    missing = 0
    for start in range(0, len(hooks), FEED_BATCH):
        batch = hooks[start : start + FEED_BATCH]
        before = (await get_json(http, f"{fake_url}/count"))["sends"]

        async def one(deployment: str, secret: str, chat: int) -> None:
            url = f"{base}/telegram/bots/{deployment}"
            body = update(chat, "/start")
            async with http.post(url, data=body, headers=_headers(secret)) as response:
                if response.status != 200:
                    raise RuntimeError(f"webhook {response.status}: {await response.text()}")

        await asyncio.gather(*(one(d, s, 900_000 + start + i) for i, (d, s) in enumerate(batch)))
        deadline = time.monotonic() + wait_s
        while True:
            got = (await get_json(http, f"{fake_url}/count"))["sends"] - before
            if got >= len(batch) or time.monotonic() > deadline:
                missing += max(0, len(batch) - got)
                break
            await asyncio.sleep(0.005)
    return missing


async def _insert_rows(data_dir: Path, first: int, count: int) -> list[tuple[str, str]]:
    """In a process of its own (`python -m bench.bench_telegram insert`): `count` Telegram
    deployments of the bot that already has one, rows built as `DeploymentRepository.create`
    builds them (token encrypted with the platform's own `Cipher` and key file), inserted in one
    transaction; no audit row and no Bot API set-up. Their webhook secrets come from the
    adapter's own `TelegramBots.webhook_secret`."""
    from sqlmodel import select

    from adapters.telegram.bots import TelegramBots
    from runtime.cipher import Cipher, load_or_create_secret
    from storage.database import Database
    from storage.deployments import new_deployment_id
    from storage.tables import Deployment

    cipher = Cipher(load_or_create_secret(data_dir / "secret.key"))
    no_runtime: Any = None  # webhook_secret needs only the cipher
    adapter = TelegramBots(runtime=no_runtime, cipher=cipher, api_url="", public_url=None)
    db = Database(f"sqlite+aiosqlite:///{data_dir / 'studio.db'}")
    made: list[tuple[str, str]] = []
    try:
        async with db.read() as session:
            query = select(Deployment).where(Deployment.channel == "telegram")
            model = (await session.exec(query)).first()
        if model is None:
            raise RuntimeError("no Telegram deployment to copy the team and bot from")
        rows = []
        for n in range(first, first + count):
            token = bot_token(n)
            bot_id = token.split(":", 1)[0]
            rows.append(
                Deployment(
                    id=new_deployment_id(),
                    team_id=model.team_id,
                    bot_id=model.bot_id,
                    channel="telegram",
                    env=model.env,
                    target=bot_id,
                    credentials=cipher.encrypt(token),
                    public_ident=f"https://t.me/bench_{bot_id}_bot",
                )
            )
            made.append((rows[-1].id, adapter.webhook_secret(rows[-1].id)))
        async with db.write() as session:  # one transaction
            session.add_all(rows)
    finally:
        await db.dispose()
    return made


def _insert_main(data_dir: str, first: str, count: str, out: str) -> None:
    made = asyncio.run(_insert_rows(Path(data_dir), int(first), int(count)))
    Path(out).write_text(json.dumps(made))


async def _insert(tmp: Path, data_dir: Path, first: int, count: int) -> list[tuple[str, str]]:
    out = tmp / f"inserted-{first}.json"
    args = [str(data_dir), str(first), str(count), str(out)]
    with ExitStack() as stack:
        helper = stack.enter_context(
            child(
                [PYTHON, "-m", "bench.bench_telegram", "insert", *args],
                env=base_env(),
                log=tmp / "insert.log",
                cwd=tmp,
            )
        )
        await asyncio.to_thread(helper.process.wait)  # bounded by the module's limit
        if helper.process.returncode != 0:
            raise RuntimeError(f"inserting deployments failed:\n{helper.log_tail()}")
    return [(str(d), str(s)) for d, s in json.loads(out.read_text())]


async def _memory(tmp: Path, platform: Child, base: str, fake_url: str, report: Report) -> None:
    """A platform that has served nothing yet: RSS, then with 1, 1,000 and 10,000 Telegram
    deployments (the first REST_DEPLOYS through REST, the others written straight into its
    database), each RSS read after every deployment has answered one /start update. Each step's
    pace calibrates the limit for the next."""
    m = Memory()
    await wait_http(f"{base}/healthz", platform)
    await asyncio.sleep(0.5)  # let start-up settle
    m.empty_mb = platform.rss_mb()
    report.add(
        Figure("bots_empty_rss_mb", round(m.empty_mb, 1), "MB", "", "platform RSS, no bots yet")
    )
    key = (tmp / "memory" / "local.key").read_text().strip()
    await _make_bot(base, key)
    sem = asyncio.Semaphore(DEPLOY_CONCURRENCY)
    async with _api(key) as http:

        async def deploy(token: str) -> tuple[str, str]:
            async with sem:
                deployment = await _deploy(http, base, token)
            hook = await get_json(http, f"{fake_url}/webhook", token=token)
            return deployment, str(hook["secret_token"])

        done = previous = 0
        for target in MEMORY_STEPS:
            report.begin(f"the memory step to {target:,} deployments")
            step_started = time.monotonic()
            hooks: list[tuple[str, str]] = []
            rest = min(target, REST_DEPLOYS) - done
            if rest > 0:  # through REST
                tokens = [bot_token(n) for n in range(1_000 + done, 1_000 + done + rest)]
                if done:  # the first deploy also imports aiogram: not timed
                    started = time.monotonic()
                    for token in tokens[:REST_ONE_BY_ONE]:
                        hooks.append(await deploy(token))
                    m.one_by_one_s = time.monotonic() - started
                    tokens = tokens[REST_ONE_BY_ONE:]
                    cpu, started = platform.cpu_seconds(), time.monotonic()
                    hooks += await asyncio.gather(*(deploy(t) for t in tokens))
                    m.rest_s += time.monotonic() - started
                    m.rest_cpu_s += platform.cpu_seconds() - cpu
                    m.rest_deploys += len(tokens)
                else:
                    hooks += await asyncio.gather(*(deploy(t) for t in tokens))
            if target > done + len(hooks):
                first = done + len(hooks)
                direct = await _insert(tmp, tmp / "memory", 1_000 + first, target - first)
                m.direct += len(direct)
                hooks += direct
            await asyncio.sleep(0.3)
            m.deployed_rss_mb[target] = platform.rss_mb()
            cpu, started = platform.cpu_seconds(), time.monotonic()
            wait_s = ANSWER_WAIT_S if done else FIRST_ANSWER_S  # the first builds a Bot
            missing = await _feed(http, base, fake_url, hooks, wait_s)
            m.feed_s += time.monotonic() - started
            m.feed_cpu_s += platform.cpu_seconds() - cpu
            m.feeds += len(hooks)
            m.errors += missing
            if missing and not m.first_error:
                m.first_error = f"{missing} of {len(hooks)} /start not answered"
            done = target
            await asyncio.sleep(0.5)  # background sends marked, their tasks gone
            m.rss_mb[target] = platform.rss_mb()
            print(
                f"# memory: {target} deployments, RSS {m.deployed_rss_mb[target]:.0f} MB "
                f"deployed, {m.rss_mb[target]:.0f} MB after /start (empty "
                f"{m.empty_mb:.0f} MB); REST {m.rest_deploys} in {m.rest_s:.1f} s, "
                f"/start {m.feeds} in {m.feed_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            report.add(*_memory_figures(m, target))
            if done > 1 and done < MEMORY_STEPS[-1]:  # the first step is mostly one-off costs
                each = (time.monotonic() - step_started) / (done - previous)
                report.needs(
                    each * (MEMORY_STEPS[-1] - done), f"memory at {each * 1000:.1f} ms a bot"
                )
            previous = done


# -- the module --------------------------------------------------------------------------------


async def run(report: Report) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-telegram-")))
        llm, llm_base = await model_server(stack, tmp)
        fake, fake_url = await _fake_telegram(stack, tmp)
        # The memory phase's platform starts now, with the others, and idles until its turn.
        idle, idle_base = _platform(stack, tmp, "memory", llm_base, fake_url)
        started = time.monotonic()
        await _compare(tmp, llm_base, fake_url, report)
        print(
            f"# CPU s during the comparison: llm {llm.cpu_seconds():.1f}, fake telegram "
            f"{fake.cpu_seconds():.1f}",
            file=sys.stderr,
        )
        middle = time.monotonic()
        await _memory(tmp, idle, idle_base, fake_url, report)
        print(
            f"# comparison {middle - started:.0f} s, memory {time.monotonic() - middle:.0f} s",
            file=sys.stderr,
        )


def _throughput_figures(a: Side, b: Side, ab: Phases) -> list[Figure]:
    how_ups = (
        f"{CONCURRENCY} webhook updates in flight (sent, not yet answered) over {CHATS} private "
        f"chats per side, at most one per chat, each chat used once before (bot history "
        f"{HISTORY}, every turn stored; the "
        "baseline, bare aiogram + litellm, sends system + user only and stores nothing); "
        f"sendMessage answers counted at the fake Bot API per token, {WARMUP_S:g} s warm-up + "
        f"{MEASURE_S:g} s measured per phase, phases {ORDER} (A platform, B baseline, C "
        "platform with a live A/B test)"
    )
    how_ab = (
        f"the same with a live A/B test on the platform's production (v1 vs v2, {AB_PERCENT}% "
        "of end users on v2: each turn hashes its user, half are answered by the other version, "
        "every answer stores its test and variant), started through POST .../abtest before each "
        "C phase and stopped after it (turns read the test anew: the warm-up absorbs it)"
    )
    plain, with_ab = mean(a.rates), mean(ab.rates)
    figures = [
        Figure("telegram_throughput_ratio", ratio(a.rates, b.rates), "", ">= 0.8", how_ups),
        Figure(
            "telegram_throughput_ratio_ab",
            ratio(ab.rates, b.rates),
            "",
            ">= 0.8",
            f"telegram_platform_ab_ups / telegram_baseline_ups; {how_ab}",
        ),
        Figure(
            "telegram_ab_vs_plain",
            round(with_ab / plain, 3),
            "",
            "",
            "telegram_platform_ab_ups / telegram_platform_ups: what a running A/B test leaves of "
            "the platform's throughput (1 = no cost; phases of one run, interleaved)",
        ),
    ]
    how = "saturation with the A/B test running: answers sent per second, phases {phases}"
    figures.append(rate_figure("telegram_platform_ab_ups", ab.rates, "updates/s", how))
    figures += cpu_figure(
        "telegram_platform_ab_cpu_ms_per_update",
        ab.cpu,
        "server process user+sys CPU during the measured C phases / answers sent (as "
        "telegram_platform_cpu_ms_per_update, with the A/B test running)",
    )
    for side in (a, b):
        how = "saturation: answers sent per second, phases {phases}"
        figures.append(rate_figure(f"telegram_{side.name}_ups", side.rates, "updates/s", how))
        figures += cpu_figure(
            f"telegram_{side.name}_cpu_ms_per_update",
            side.cpu,
            "server process user+sys CPU during measured throughput phases / answers sent",
        )
    return figures


def _latency_figures(a: Side, b: Side, rate: float, blocks: int) -> list[Figure]:
    how_lat = (
        f"open loop at {rate:.0f} updates/s ({LOAD:g} x the platform's saturation rate), "
        f"{LAT_BLOCK * blocks} updates per side in blocks of {LAT_BLOCK} alternating "
        f"ABBA after {LAT_WARMUP} warm-up; update POSTed -> its sendMessage at the fake "
        "(time.monotonic in both processes)"
    )
    q = {
        (side.name, what, p): percentile(values, p)
        for side in (a, b)
        for what, values in (("ack", side.ack_ms), ("answer", side.answer_ms))
        for p in (0.5, 0.99)
    }
    figures = [
        Figure(
            "telegram_added_latency_p50_ms",
            round(q["platform", "answer", 0.5] - q["baseline", "answer", 0.5], 2),
            "ms",
            "<= 3",
            "p50(platform) - p50(baseline); " + how_lat,
        ),
        Figure(
            "telegram_added_latency_p99_ms",
            round(q["platform", "answer", 0.99] - q["baseline", "answer", 0.99], 2),
            "ms",
            "<= 10",
            "p99(platform) - p99(baseline); " + how_lat,
        ),
    ]
    for side in (a, b):
        offered = f"{mean(side.offered):.1f}/s offered" if side.offered else ""
        figures += [
            Figure(
                f"telegram_{side.name}_p50_ms",
                round(q[side.name, "answer", 0.5], 2),
                "ms",
                "",
                f"update POSTed -> answer at the fake, {offered}; as the added latency",
            ),
            Figure(
                f"telegram_{side.name}_p99_ms",
                round(q[side.name, "answer", 0.99], 2),
                "ms",
                "",
                "update POSTed -> answer at the fake; as the added latency",
            ),
            Figure(
                f"telegram_{side.name}_ack_p99_ms",
                round(q[side.name, "ack", 0.99], 2),
                "ms",
                "",
                "the webhook's HTTP response (platform: after the update is stored); as the added "
                "latency",
            ),
        ]
    return figures


def _errors(side: Side, seen: dict[str, int]) -> Figure:
    return Figure(
        f"telegram_{side.name}_errors",
        side.errors,
        "",
        "<= 0",
        f"{side.bad_acks} non-200 webhook answers + {side.missing} answers not sent "
        f"within {ANSWER_WAIT_S:g} s, of {side.sent} updates sent ({side.not_offered} "
        f"not offered for want of an idle chat); the fake saw {seen.get('sends', 0)} "
        f"sendMessage, {seen.get('other', 0)} not the answer"
        + (f"; first: {side.first_error[:120]}" if side.first_error else ""),
    )


def _memory_figures(m: Memory, target: int) -> list[Figure]:
    """The figures that the step to `target` deployments completes."""
    rest_rate = m.rest_deploys / m.rest_s if m.rest_s else 0.0
    one_rate = REST_ONE_BY_ONE / m.one_by_one_s if m.one_by_one_s else 0.0
    before = f"{m.deployed_rss_mb[target] - m.empty_mb:.1f} MB"
    rss = round(m.rss_mb[target] - m.empty_mb, 1)
    if target == 1:
        how = f"the same at the first deployment (it imports aiogram); {before} before /start"
        return [Figure("bots_1_rss_mb", rss, "MB", "", how)]
    if target == 1_000:
        figures = [
            Figure(
                "bots_1k_rss_mb",
                rss,
                "MB",
                "",
                f"the same at 1,000 deployments; {before} before /start",
            )
        ]
        if m.rest_deploys:
            figures.append(
                Figure(
                    "telegram_deploys_per_s",
                    round(rest_rate, 1),
                    "deploys/s",
                    "",
                    f"{m.rest_deploys} REST deploys, {DEPLOY_CONCURRENCY} in flight, 4 Bot API "
                    f"calls each; platform CPU {m.rest_cpu_s * 1000 / m.rest_deploys:.1f} ms per "
                    f"deploy; one at a time: {one_rate:.1f}/s",
                )
            )
        return figures
    rest_s = target / rest_rate if rest_rate else 0.0
    how = (
        f"platform RSS (VmRSS) above the same process started with no bots "
        f"({m.empty_mb:.0f} MB): one bot with N Telegram deployments, a token each, after each "
        "answered one /start webhook update (its aiogram Bot built and cached; no model call); "
        f"the first {REST_DEPLOYS} made through POST .../deployments (getMe, setWebhook, "
        f"setMyCommands, setMyShortDescription at the fake), the other {m.direct:,} inserted "
        "into its database by a helper process (rows as DeploymentRepository.create builds "
        "them, token encrypted with its Cipher and key; no audit row, no Bot API set-up, so "
        f"the adapter builds their Bot on first use): {target:,} REST deploys would "
        f"take {rest_s:.0f} s at {rest_rate:.0f}/s ({DEPLOY_CONCURRENCY} at a time; one at a "
        f"time {one_rate:.0f}/s); {before} before their /start"
    )
    rest_kb = (m.rss_mb[1_000] - m.rss_mb[1]) * 1024 / 999
    direct_kb = (m.rss_mb[10_000] - m.rss_mb[1_000]) * 1024 / 9_000
    return [
        Figure("bots_10k_rss_mb", rss, "MB", "<= 200", how),
        Figure(
            "bots_rss_kb_per_bot",
            round(direct_kb, 1),
            "KB",
            "",
            "(RSS at 10,000 - RSS at 1,000 deployments) / 9,000; (RSS at 1,000 - RSS at 1) / "
            f"999 = {rest_kb:.1f} KB (with one-off warm-ups of the REST and first-use paths)",
        ),
        Figure(
            "bots_memory_errors",
            m.errors,
            "",
            "<= 0",
            f"/start updates of the memory phase not answered within {ANSWER_WAIT_S:g} s, of "
            f"{m.feeds} (platform CPU {m.feed_cpu_s * 1000 / max(1, m.feeds):.1f} ms each)"
            + (f"; {m.first_error}" if m.first_error else ""),
        ),
    ]


if __name__ == "__main__" and sys.argv[1:2] == ["insert"]:
    _insert_main(*sys.argv[2:6])
