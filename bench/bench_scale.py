"""Scale-out (issue 21): answered Telegram messages per second with two `serve` workers on one
PostgreSQL against one, and what a turn asks of PostgreSQL.

Processes on loopback: the zero-latency model (`bench.llm_server`), the counting fake Bot API
(`bench.telegram_server`) and two workers, `main.py serve` in webhook mode on one fresh
PostgreSQL database (each through `bench.scale_worker`, which counts the SQL statements and
commits its process sends; its own data folder, the same `STUDIO_SECRET_KEY`, `:memory:`
Qdrant). The team is created before they start (`main.py team create`, which migrates); the bench
bot (history 10, as in bench_telegram) is deployed to Telegram through worker 1.

The load is bench_telegram's: CONCURRENCY webhook updates in flight over CHATS private chats, at
most one per chat, each done when its answer reaches sendMessage at the fake. Phases alternate
(ORDER: A = every update to worker 1, worker 2 idle; B = updates round-robin over both workers,
as a load balancer would send them), so drift on a shared machine hits both.

Then, with the two workers idle for PG_SETTLE_S (an idle backend flushes its statistics within
PostgreSQL's PGSTAT_IDLE_INTERVAL, 10 s), a counting phase at the B load: the bench database's
`pg_stat_database.xact_commit` (server side: every committed transaction of any process on that
database) and the workers' counted statements are read before and after, and divided by the
answers counted at the fake. Turns' writes are batched (`runtime.WriteBatcher`: one transaction
for the writes of several turns at saturation), so commits per turn may be well below one.
`pg_stat_statements` is not used: the server does not preload it (it needs
`shared_preload_libraries` and a restart).

PostgreSQL: BENCH_POSTGRES_URL, else STUDIO_TEST_POSTGRES_URL, else postgres@127.0.0.1:5432; a
database `bench_scale_*` is created for the run and dropped after it. Without a reachable server
the module stops at once with a message that says so (its figures are then missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.bench_telegram import HISTORY, PUBLIC_URL, Side, bot_token
from bench.common import (
    HOST,
    PYTHON,
    ROOT,
    Child,
    Figure,
    Report,
    base_env,
    child,
    connections,
    fake_server,
    free_port,
    model_server,
    wait_http,
)
from bench.load import (
    Load,
    api_session,
    deploy,
    first_answers,
    get_json,
    make_bench_bot,
    prime,
    rate_figure,
    ratio,
    saturate,
)

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SECRET_KEY = "bench-scale-secret-key-0123456789abcdefghijklmnopqrs"
CONCURRENCY = 32  # updates in flight, both configurations: enough to keep two workers busy
CHATS = 512  # private chats, one update in flight in each, taken in turn
WARMUP_S = 1.0
MEASURE_S = 4.0
SATURATION = Load(CONCURRENCY, WARMUP_S, MEASURE_S)
ORDER = "ABBAAB"  # A: one worker, B: two; positions add up the same (0+3+4 = 1+2+5)
# Idle before reading PostgreSQL's statistics: a backend flushes its counts at most once a
# second while busy and within PGSTAT_IDLE_INTERVAL (10 s) once idle.
PG_SETTLE_S = 11.0
COUNT_S = 4.0  # the counting phase's load (plus its warm-up)
ANSWER_WAIT_S = 10.0
# Unloaded: start-up ~25 s, priming ~5 s, phases 30 s, counting ~27 s.
BUDGET_S = 25 + 5 + len(ORDER) * (WARMUP_S + MEASURE_S) + 2 * PG_SETTLE_S + COUNT_S + WARMUP_S
FIGURES = (
    "scale_2_workers_ratio",
    "scale_1_worker_ups",
    "scale_2_workers_ups",
    "scale_errors",
    "pg_queries_per_turn",
    "pg_commits_per_turn",
    "pg_cpu_ms_per_turn",
)


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL to measure on: the module is skipped."""


def postgres_url() -> str:
    return (
        os.environ.get("BENCH_POSTGRES_URL")
        or os.environ.get("STUDIO_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES
    )


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _create_database(server: str) -> str:
    """A fresh database on the server: its URL. PostgresUnavailableError if none answers."""
    import asyncpg

    name = f"bench_scale_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(_dsn(server), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise PostgresUnavailableError(
            f"skipped: no PostgreSQL at {server} ({type(exc).__name__}: {exc}); set "
            "BENCH_POSTGRES_URL or STUDIO_TEST_POSTGRES_URL"
        ) from None
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.rsplit("/", 1)[0] + "/" + name


async def _drop_database(server: str, database: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(_dsn(server), timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


async def _commits(database: str) -> int:
    """`pg_stat_database.xact_commit` of the database (a connection of its own each time, so
    that no cached statistics snapshot is read; this read commits one transaction itself)."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(database), timeout=5)
    try:
        value = await conn.fetchval(
            "select xact_commit from pg_stat_database where datname = current_database()"
        )
    finally:
        await conn.close()
    return int(value)


def _postgres_cpu_s() -> float | None:
    """CPU seconds the PostgreSQL server on this machine has used: its live processes, and the
    backends that ended (the postmaster's reaped children). None when it runs elsewhere."""
    ticks, found = 0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        if text[text.index("(") + 1 : text.rindex(")")] != "postgres":
            continue
        fields = text[text.rindex(")") + 2 :].split()  # from field 3 (state) on
        ticks += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        found = True
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


@dataclass(slots=True)
class Worker:
    proc: Child
    url: str
    counts: Path  # bench.scale_worker's running totals

    def counted(self) -> dict[str, int]:
        return {k: int(v) for k, v in json.loads(self.counts.read_text()).items()}


@dataclass(slots=True, kw_only=True)
class RoundRobin(Side):
    """bench_telegram's side, whose updates go to `urls` in turn (one URL: a single worker)."""

    urls: list[str] = field(default_factory=list)
    turn: int = 0

    def request(self, slot: int) -> tuple[bytes, dict[str, str]]:
        # `WebhookSide.event` posts to `self.url` right after this call, with no await between.
        self.url = self.urls[self.turn % len(self.urls)]
        self.turn += 1
        return Side.request(self, slot)


def _env(database: str, data: Path, llm_base: str, fake_url: str) -> dict[str, str]:
    return base_env(
        STUDIO_DATABASE_URL=database,
        STUDIO_SECRET_KEY=SECRET_KEY,
        STUDIO_DATA_DIR=str(data),
        STUDIO_QDRANT_URL=":memory:",
        STUDIO_LLM_API_BASE=llm_base,
        STUDIO_TELEGRAM_API_URL=fake_url,
        STUDIO_PUBLIC_URL=PUBLIC_URL,
        OPENAI_API_KEY="sk-bench",
    )


async def _team(tmp: Path, env: dict[str, str]) -> str:
    """`main.py team create bench` on the database (it migrates it): the owner key."""
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        str(ROOT / "main.py"),
        "team",
        "create",
        "bench",
        cwd=tmp,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"team create failed: {err.decode()[-2000:]}")
    return out.decode().strip().splitlines()[-1].strip()


def _worker(stack: ExitStack, tmp: Path, n: int, env: dict[str, str]) -> Worker:
    port = free_port()
    counts = tmp / f"w{n}.counts.json"
    proc = stack.enter_context(
        child(
            [PYTHON, "-m", "bench.scale_worker", str(counts), "serve", "--port", str(port)],
            cwd=tmp,  # no .env from the repository
            log=tmp / f"w{n}.log",
            env=env,
        )
    )
    return Worker(proc, f"http://{HOST}:{port}", counts)


async def _answers(http: aiohttp.ClientSession, fake_url: str, token: str) -> int:
    return int((await get_json(http, f"{fake_url}/count", token=token))["answers"])


async def _phase(side: RoundRobin, http: aiohttp.ClientSession, workers: list[Worker]) -> float:
    """A saturation phase of the side as it is pointed: answers per second (at the fake)."""

    async def answers() -> int:
        return (await side.answers(http))["answers"]

    phase = await saturate(lambda: side.event(http), workers[0].proc, SATURATION, completed=answers)
    return phase.rate


async def run(report: Report) -> None:
    server = postgres_url()
    database = await _create_database(server)
    try:
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-scale-")))
            await _measure(stack, tmp, database, report)
    finally:
        await _drop_database(server, database)


async def _measure(stack: ExitStack, tmp: Path, database: str, report: Report) -> None:
    report.begin("start-up: fakes, team, two workers")
    _, llm_base = await model_server(stack, tmp)
    _, fake_url = await fake_server(stack, tmp, "bench.telegram_server", "telegram")
    key = await _team(tmp, _env(database, tmp / "cli", llm_base, fake_url))
    workers = [
        _worker(stack, tmp, n, _env(database, tmp / f"w{n}", llm_base, fake_url)) for n in (1, 2)
    ]
    for worker in workers:
        await wait_http(f"{worker.url}/readyz", worker.proc)
    token = bot_token(2_000)
    async with api_session(key, connector=connections(8)) as api:
        await make_bench_bot(api, workers[0].url, HISTORY)
        deployment = await deploy(api, workers[0].url, {"channel": "telegram", "token": token})
        hook = await get_json(api, f"{fake_url}/webhook", token=token)
    if not str(hook.get("url", "")).endswith(f"/telegram/bots/{deployment}"):
        raise RuntimeError(f"no webhook set for {deployment}: {hook}")
    urls = [f"{w.url}/telegram/bots/{deployment}" for w in workers]
    side = RoundRobin(
        "scale",
        urls[0],
        workers[0].proc,
        fake_url,
        CHATS,
        ANSWER_WAIT_S,
        secret=str(hook["secret_token"]),
        token=token,
        chat_base=400_000,
        urls=urls,
    )
    one: list[float] = []
    two: list[float] = []
    async with aiohttp.ClientSession(connector=connections(CONCURRENCY * 4)) as http:
        for url in urls:  # each worker's first answer imports and builds what later ones reuse
            side.urls = [url]
            await first_answers((side,), http)
        report.begin("priming the chats")
        side.urls = urls
        started = time.monotonic()
        await prime(lambda: side.event(http), CHATS - 2, CONCURRENCY)
        ups = CHATS / (time.monotonic() - started)
        print(f"# primed {CHATS} chats at {ups:.0f}/s", file=sys.stderr, flush=True)
        report.begin("the throughput phases")
        for letter in ORDER:
            side.urls = urls[:1] if letter == "A" else urls
            rate = await _phase(side, http, workers)
            (one if letter == "A" else two).append(rate)
            print(f"# {letter}: {rate:.1f} answers/s", file=sys.stderr, flush=True)
        report.add(*_throughput_figures(one, two, side))
        report.begin("counting PostgreSQL's work per turn")
        side.urls = urls
        await asyncio.sleep(PG_SETTLE_S)
        cpu_before = _postgres_cpu_s()
        before = (
            await _commits(database),
            [w.counted() for w in workers],
            await _answers(http, fake_url, token),
        )
        count = Load(CONCURRENCY, WARMUP_S, COUNT_S)
        await saturate(lambda: side.event(http), workers[0].proc, count)
        await asyncio.sleep(PG_SETTLE_S)  # the last answers' outbox marks committed, flushed
        after = (
            await _commits(database),
            [w.counted() for w in workers],
            await _answers(http, fake_url, token),
        )
        cpu_after = _postgres_cpu_s()
    report.add(*_pg_figures(before, after))
    if cpu_before is not None and cpu_after is not None:
        report.add(_pg_cpu_figure(cpu_after - cpu_before, after[2] - before[2]))


def _throughput_figures(one: list[float], two: list[float], side: RoundRobin) -> list[Figure]:
    how = (
        f"{CONCURRENCY} Telegram webhook updates in flight over {CHATS} private chats (at most one "
        f"per chat; bot history {HISTORY}; zero-latency model), answers counted at the fake Bot "
        f"API; {WARMUP_S:g} s warm-up + {MEASURE_S:g} s measured per phase, phases {ORDER}: A "
        "every update to worker 1 (worker 2 running, idle), B round-robin over both; both "
        "workers `main.py serve` on one PostgreSQL database, on this machine's "
        f"{os.cpu_count()} CPUs with PostgreSQL, the fakes and the load generator"
    )
    return [
        Figure(
            "scale_2_workers_ratio",
            ratio(two, one),
            "",
            ">= 1.3",
            "scale_2_workers_ups / scale_1_worker_ups; " + how,
        ),
        rate_figure("scale_1_worker_ups", one, "answers/s", "phases A: {phases}"),
        rate_figure("scale_2_workers_ups", two, "answers/s", "phases B: {phases}"),
        Figure(
            "scale_errors",
            side.errors,
            "",
            "<= 0",
            f"{side.bad_acks} non-200 webhook answers + {side.missing} answers not sent within "
            f"{ANSWER_WAIT_S:g} s, of {side.sent} updates"
            + (f"; first: {side.first_error[:120]}" if side.first_error else ""),
        ),
    ]


def _pg_cpu_figure(cpu_s: float, answers: int) -> Figure:
    per_turn_ms = cpu_s * 1000 / answers
    return Figure(
        "pg_cpu_ms_per_turn",
        round(per_turn_ms, 2),
        "ms",
        "",
        f"CPU time of the PostgreSQL server's processes on this machine (/proc: live ones and "
        f"the backends that ended) over the counting phase and its idle wait, / {answers} "
        f"answers: about {1000 / per_turn_ms:.0f} answered messages per second per PostgreSQL "
        "core at this load; anything else the server did meanwhile (other databases) counts too",
    )


def _pg_figures(
    before: tuple[int, list[dict[str, int]], int], after: tuple[int, list[dict[str, int]], int]
) -> list[Figure]:
    answers = after[2] - before[2]
    if answers <= 0:
        raise RuntimeError("no answer during the counting phase")

    def counted(what: str) -> int:
        return sum(a[what] - b[what] for a, b in zip(after[1], before[1], strict=True))

    statements, commits, rollbacks = counted("statements"), counted("commits"), counted("rollbacks")
    checkouts = counted("checkouts")
    server_commits = after[0] - before[0] - 1  # the first read's own transaction
    window = (
        f"{answers} answers of a counting phase at the two-worker load ({WARMUP_S + COUNT_S:g} "
        f"s, then {PG_SETTLE_S:g} s idle; background work of the window included)"
    )
    return [
        Figure(
            "pg_queries_per_turn",
            round(statements / answers, 2),
            "",
            "",
            f"SQL statements the two workers executed (SQLAlchemy `before_cursor_execute` on "
            f"every Engine of each process, by bench.scale_worker: BEGIN, COMMIT and pool pings "
            f"not included, nor the statements on the workers' own asyncpg connections: three a "
            f"turn (its conversation's advisory lock, its release, and what the holder reads "
            f"first: pending messages, latest message, what was stored after the cached history, "
            f"open handoff: `storage.held`), and the "
            f"leader's and the invalidation listener's checks; pg_stat_statements is not "
            f"preloaded on this server) / {window}",
        ),
        Figure(
            "pg_commits_per_turn",
            round(server_commits / answers, 2),
            "",
            "",
            f"pg_stat_database.xact_commit delta of the bench database / {window}: every "
            "transaction committed on it, background ones (the leader's checks, autovacuum) "
            f"included; counted in-process: {commits / answers:.2f} COMMITs the service issued "
            f"(turns' writes are batched), {rollbacks / answers:.2f} rollbacks and "
            f"{checkouts / answers:.2f} pool checkouts (each pre-pinged) per answer",
        ),
    ]
