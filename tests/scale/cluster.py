"""A cluster of `python main.py serve` processes ("workers") on one PostgreSQL database, for the
scale-out tests (issue 21).

    with Cluster.start(postgres_url, tmp, workers=4) as cluster:
        bot = cluster.deploy_bot("echo-bot", token(1))      # REST on worker 0, webhook at the fake
        await cluster.post(cluster.workers[1], bot, message_update("hi", chat_id=7))
        cluster.answers(bot)                                 # what the fake Telegram was sent

Each worker has its own data folder and port, the same `STUDIO_SECRET_KEY`, `:memory:` Qdrant (no
knowledge is used), `STUDIO_PUBLIC_URL` set (generated Telegram bots use webhooks) and two fakes
served in threads of the test process: a Bot API (`WorkerTelegram`, which each worker reaches at
`{base}/w{index}`, so every call it records names the worker that made it) and an OpenAI-
compatible model that echoes the user's text (`EchoLLM`, "echo: <text>", after `latency_s`), so
that an answer names the update it answers.

The team is created once, before any worker starts (`python main.py team create`, which also
migrates the database), so workers starting together neither race to create the `local` team
nor to migrate. Workers start in parallel; a worker is up when `/healthz` and `/readyz` answer
200, then has answered one update through the model (`warm`: first-use imports are paid at
start, not in a test's timings). `kill(worker)` is `kill -9`; `heal()` starts again every worker
that died, on its port and data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.conftest import drop_postgres_database, fresh_postgres_database
from tests.fakes.llm import FakeLLM
from tests.fakes.telegram import Call, FakeTelegram
from tests.fakes.telegram_payloads import SECRET_HEADER, message_update, token

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "scale-tests-secret-key-0123456789abcdefghijklmnop"
PUBLIC_URL = "https://studio.scale.invalid"  # webhook mode; nothing ever calls it
MODEL = "openai/fake"  # the echo model, through STUDIO_LLM_API_BASE
START_S = 120.0  # a worker's start on a loaded 2-core machine (imports, migrations checked)
WORKER_HEADER = "x-studio-worker"  # added by WorkerTelegram to each call it records


def run_async(coroutine: Any) -> Any:
    """Run a coroutine to its end from synchronous code (a fixture), in a thread of its own so
    that it never meets a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the fakes ---------------------------------------------------------------------------------


class WorkerTelegram(FakeTelegram):
    """The fake Bot API, reached by worker N at `{base_url}/wN`: the prefix is taken off and each
    call it records carries the header `x-studio-worker: N` (`worker_of(call)`)."""

    def __init__(self) -> None:
        super().__init__()
        inner = self.app

        async def tagged(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                head, slash, rest = scope["path"].lstrip("/").partition("/")
                if slash and head[:1] == "w" and head[1:].isdigit():
                    path = "/" + rest
                    headers = [*scope["headers"], (WORKER_HEADER.encode(), head[1:].encode())]
                    scope = {**scope, "path": path, "raw_path": path.encode(), "headers": headers}
            await inner(scope, receive, send)

        self.app = tagged

    def url_for(self, worker: int) -> str:
        return f"{self.base_url}/w{worker}"


def worker_of(call: Call) -> int | None:
    """The worker that made a call to `WorkerTelegram` (None: not through a worker's prefix)."""
    value = call.headers.get(WORKER_HEADER)
    return int(value) if value is not None else None


class EchoLLM(FakeLLM):
    """The fake model answering "echo: <the last user text>" (nothing scripted), each completion
    after `latency_s`; `arrived` counts the completion requests received (before that wait), so
    a test can tell that turns are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.latency_s = 0.0
        self.arrived = 0

    async def _complete(self, request: Request) -> Response:
        self.arrived += 1  # one event loop (the fake's thread) serves every request
        await request.body()  # kept by the request: a client killed meanwhile is no error here
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        return await super()._complete(request)


# -- the workers -------------------------------------------------------------------------------


@dataclass(slots=True)
class Worker:
    index: int
    port: int
    data: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0  # how many times it was started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __str__(self) -> str:
        return f"worker {self.index} (port {self.port})"


@dataclass(frozen=True, slots=True)
class Deployed:
    """A bot deployed to Telegram: its name, deployment id, token and webhook secret."""

    bot: str
    deployment: str
    token: str
    secret: str


@dataclass(frozen=True, slots=True)
class Sent:
    """A `sendMessage` the fake Telegram received: chat, text, the worker that sent it, when."""

    chat: int
    text: str
    worker: int | None
    at: float


@dataclass(slots=True)
class Cluster:
    """N workers on one PostgreSQL database and the fakes they talk to (see the module)."""

    server_url: str  # the PostgreSQL server's URL (a database on it is the cluster's)
    database_url: str
    tmp: Path
    telegram: WorkerTelegram
    llm: EchoLLM
    key: str = ""  # the team's owner API key
    pool: list[Worker] = field(default_factory=list)  # every worker ever started
    size: int = 0  # how many of the pool are in use (`resize`): `workers`
    warm_bot: Deployed | None = None  # the bot that `warm` talks to
    _next: int = 0  # the round-robin position

    # -- life ----------------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, server_url: str, tmp: Path, *, workers: int) -> Iterator[Self]:
        """A fresh database, the fakes, the team, then `workers` workers started together; all
        stopped and dropped on the way out."""
        database_url = run_async(fresh_postgres_database(server_url))
        telegram, llm = WorkerTelegram().start(), EchoLLM().start()
        cluster = cls(server_url, database_url, tmp, telegram, llm)
        try:
            cluster.key = cluster._create_team()
            for index in range(workers):
                data = tmp / f"w{index}"
                data.mkdir(parents=True, exist_ok=True)
                cluster.pool.append(Worker(index, free_port(), data, tmp / f"w{index}.log"))
            cluster.size = workers
            cluster._launch(cluster.pool)
            yield cluster
        finally:
            for worker in cluster.pool:
                cluster.stop(worker)
            telegram.stop()
            llm.stop()
            run_async(drop_postgres_database(server_url, database_url))

    def env(self, data: Path, telegram_url: str) -> dict[str, str]:
        """A worker's (or the CLI's) environment: this one without any setting of the service,
        channel token or provider key, plus the cluster's settings."""
        dropped = ("STUDIO_", "SLACK_", "TELEGRAM_", "OTEL_")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(dropped) and not k.endswith(("_API_KEY", "_API_BASE"))
        }
        env.update(
            STUDIO_DATABASE_URL=self.database_url,
            STUDIO_SECRET_KEY=SECRET_KEY,
            STUDIO_DATA_DIR=str(data),
            STUDIO_QDRANT_URL=":memory:",
            STUDIO_TELEGRAM_API_URL=telegram_url,
            STUDIO_LLM_API_BASE=self.llm.base_url,
            STUDIO_PUBLIC_URL=PUBLIC_URL,
            STUDIO_LLM_TIMEOUT_S="30",
            OPENAI_API_KEY="sk-scale-tests",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
        )
        return env

    def _create_team(self) -> str:
        """`python main.py team create scale` on the cluster's database (it migrates it): the
        owner key."""
        data = self.tmp / "cli"
        data.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "team", "create", "scale"],
            cwd=self.tmp,  # no .env of the developer's
            env=self.env(data, self.telegram.base_url),
            capture_output=True,
            text=True,
            timeout=START_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"team create failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip().splitlines()[-1].strip()

    def _spawn(self, worker: Worker) -> None:
        with open(worker.log, "ab") as out:
            out.write(f"\n=== start {worker.starts + 1} ===\n".encode())
            out.flush()
            worker.process = subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "serve", "--port", str(worker.port)],
                cwd=worker.data,
                env=self.env(worker.data, self.telegram.url_for(worker.index)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker.starts += 1

    def _launch(self, workers: Sequence[Worker]) -> None:
        """Start `workers` together; return once each answers /healthz and /readyz with 200."""
        for worker in workers:
            self._spawn(worker)
        deadline = time.monotonic() + START_S
        waiting = list(workers)
        with httpx.Client(timeout=5) as http:
            while waiting:
                worker = waiting[0]
                if not worker.alive:
                    raise RuntimeError(f"{worker} exited at start:\n{worker.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{worker} not ready in {START_S:g} s:\n{worker.log_tail()}")
                try:
                    ok = all(
                        http.get(worker.url + path).status_code == 200
                        for path in ("/healthz", "/readyz")
                    )
                except httpx.HTTPError:
                    ok = False
                if ok:
                    waiting.pop(0)
                else:
                    time.sleep(0.1)
        self.warm(workers)

    def warm(self, workers: Sequence[Worker]) -> None:
        """Each worker answers one webhook update through the model (`warm-bot`, deployed the
        first time): what a worker imports on first use (aiogram, litellm: seconds each, more
        with four workers starting on two cores) is paid here, not in a test's timings."""
        if self.warm_bot is None:
            self.warm_bot = self.deploy_bot("warm-bot", token(999_999))
        bot = self.warm_bot
        before = len(self.sent(bot))
        with httpx.Client(timeout=START_S) as http:
            for worker in workers:
                chat = 1_000_000 + 1_000 * worker.index + worker.starts
                response = http.post(
                    f"{worker.url}/telegram/bots/{bot.deployment}",
                    json=message_update("warming up", chat_id=chat, user_id=chat),
                    headers={SECRET_HEADER: bot.secret},
                )
                if response.status_code != 200:
                    raise RuntimeError(f"{worker} refused an update: {response.status_code}")
        deadline = time.monotonic() + START_S
        while len(self.sent(bot)) < before + len(workers):
            if time.monotonic() > deadline:
                tails = "\n".join(w.log_tail(1500) for w in workers)
                raise RuntimeError(f"the warm-up updates were not answered:\n{tails}")
            time.sleep(0.05)

    def stop(self, worker: Worker) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        process = worker.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self, worker: Worker) -> None:
        """`kill -9`: the worker dies at once, whatever it was doing."""
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.process is not None
        worker.process.wait()

    def heal(self) -> None:
        """Start again every worker in use that is not running (same port, same data folder)."""
        dead = [worker for worker in self.workers if not worker.alive]
        if dead:
            self._launch(dead)

    def resize(self, size: int) -> None:
        """Use the first `size` workers of the pool: those beyond are stopped (SIGTERM); those
        within are started again if they were stopped (the pool never grows)."""
        if not 1 <= size <= len(self.pool):
            raise ValueError(f"{size} workers asked of a pool of {len(self.pool)}")
        for worker in self.pool[size:]:
            self.stop(worker)
        self.size = size
        self.heal()

    @property
    def workers(self) -> list[Worker]:
        """The workers in use, worker N at index N."""
        return self.pool[: self.size]

    @property
    def alive(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.alive]

    def next_worker(self) -> Worker:
        """Round-robin over the workers that are running."""
        alive = self.alive
        worker = alive[self._next % len(alive)]
        self._next += 1
        return worker

    # -- REST ----------------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, *, worker: int = 0
    ) -> Any:
        """A REST call with the owner key to one worker, which must succeed: its JSON."""
        response = httpx.request(
            method,
            self.workers[worker].url + path,
            json=dict(body) if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def promote(self, bot: str, *, worker: int = 0) -> int:
        """Draft -> staging -> production: the new production version's number."""
        self.call("POST", f"/api/v1/bots/{bot}/promote", {"to": "staging"}, worker=worker)
        done = self.call("POST", f"/api/v1/bots/{bot}/promote", {"to": "production"}, worker=worker)
        return int(done["version"])

    def deploy_bot(self, name: str, token: str, *, worker: int = 0, **spec: Any) -> Deployed:
        """Import a bot on the echo model (`spec` adds fields), promote it to production and
        deploy it to Telegram with `token`, all through `worker`; its webhook is what the
        service set at the fake."""
        self.telegram.add_bot(token)
        body = {"name": name, "model": MODEL, "history": 4, **spec}
        self.call("POST", "/api/v1/bots/import", body, worker=worker)
        self.promote(name, worker=worker)
        made = self.call(
            "POST",
            f"/api/v1/bots/{name}/deployments",
            {"channel": "telegram", "token": token},
            worker=worker,
        )
        hook = self.telegram.webhook(token)
        deployment = str(made["id"])
        if hook is None or not str(hook["url"]).endswith(f"/telegram/bots/{deployment}"):
            raise AssertionError(f"no webhook set for {deployment}: {hook}")
        return Deployed(name, deployment, token, str(hook["secret_token"]))

    # -- traffic -------------------------------------------------------------------------------

    async def post(
        self, http: httpx.AsyncClient, worker: Worker, bot: Deployed, update: Mapping[str, Any]
    ) -> int:
        """Deliver a webhook update to one worker, as Telegram does: the HTTP status."""
        response = await http.post(
            f"{worker.url}/telegram/bots/{bot.deployment}",
            json=dict(update),
            headers={SECRET_HEADER: bot.secret},
        )
        return response.status_code

    def sent(self, bot: Deployed) -> list[Sent]:
        """Every sendMessage of the bot's token so far, oldest first."""
        calls = self.telegram.calls_to("sendMessage", bot.token)
        return [
            Sent(int(c.body["chat_id"]), str(c.body.get("text", "")), worker_of(c), c.at)
            for c in calls
        ]

    def answers(self, bot: Deployed) -> dict[int, list[Sent]]:
        """The bot's sendMessage calls per chat, oldest first."""
        chats: dict[int, list[Sent]] = {}
        for sent in self.sent(bot):
            chats.setdefault(sent.chat, []).append(sent)
        return chats

    async def wait_for_answers(
        self, bot: Deployed, count: int, timeout_s: float, *, settle_s: float = 2.0
    ) -> dict[int, list[Sent]]:
        """The bot's answers per chat once at least `count` were sent (or `timeout_s` passed),
        and `settle_s` more (a duplicate or a late answer has time to show)."""
        deadline = time.monotonic() + timeout_s
        while True:  # the fake is polled: it runs in another thread
            if len(self.sent(bot)) >= count or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(settle_s)
        return self.answers(bot)

    async def readyz(self, http: httpx.AsyncClient, worker: Worker) -> dict[str, Any] | None:
        """A worker's /readyz body (None when it does not answer)."""
        try:
            response = await http.get(f"{worker.url}/readyz", timeout=5)
        except httpx.HTTPError:
            return None
        body = response.json()
        return body if isinstance(body, dict) else None


def describe(chats: Mapping[int, Sequence[Sent]], chat_ids: Sequence[int]) -> str:
    """Chats as `chat: [text (worker N), ...]`, for a failure's message."""
    lines = []
    for chat in chat_ids:
        said = ", ".join(f"{s.text!r} (w{s.worker})" for s in chats.get(chat, []))
        lines.append(f"  chat {chat}: [{said}]")
    return "\n".join(lines)
