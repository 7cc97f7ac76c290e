"""What the benchmarks share: figures and the report they go to, time budgets, child processes on
loopback, waiting, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
# A request's own limit: only against a hang, so that a loaded machine gives slow samples.
TIMEOUT = aiohttp.ClientTimeout(total=120)
# Pooled connections idle longer than this are not reused: below uvicorn's keep-alive of 5 s, so
# that a request never goes out on a connection the server is closing (on a loaded machine that
# race lost a whole phase to "Server disconnected").
KEEPALIVE_S = 2.0
# The first message a side answers imports and builds what later ones reuse: on a loaded machine
# that can take tens of seconds.
FIRST_ANSWER_S = 60.0


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured number. `goal` is `">= 0.8"` or `"<= 3"`; empty for a raw figure."""

    name: str
    value: float
    unit: str = ""
    goal: str = ""
    how: str = ""

    @property
    def met(self) -> bool | None:
        if not self.goal:
            return None
        op, _, bound = self.goal.partition(" ")
        if op == ">=":
            return self.value >= float(bound)
        if op == "<=":
            return self.value <= float(bound)
        raise ValueError(f"{self.name}: cannot read the goal {self.goal!r}")


# A module may take LIMIT_FACTOR x what it expects plus LIMIT_SLACK_S (process start-up and
# teardown), never more than MAX_LIMIT_S.
LIMIT_FACTOR = 3.0
LIMIT_SLACK_S = 60.0
MAX_LIMIT_S = 3600.0


@dataclass(slots=True)
class Report:
    """What a benchmark module has measured so far, and until when it may run.

    A module adds its figures as each phase ends, so that the harness keeps them if a later
    phase fails or runs out of time. The limit starts from the module's `BUDGET_S` (what it
    takes on an unloaded machine); work of a fixed size (10,000 deployments, priming 1,024
    chats, writing 10k vectors) is timed on a first part, and `needs` moves the limit to fit the
    rest at that pace: a slow machine gets slower figures, not missing ones."""

    limit_s: float
    started: float = field(default_factory=time.monotonic)
    phase: str = "start-up"
    figures: list[Figure] = field(default_factory=list)

    @classmethod
    def for_budget(cls, budget_s: float) -> Report:
        return cls(min(MAX_LIMIT_S, LIMIT_FACTOR * budget_s + LIMIT_SLACK_S))

    @property
    def deadline(self) -> float:
        return self.started + self.limit_s

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)

    def begin(self, phase: str) -> None:
        """Name what runs now (said if the limit is reached during it)."""
        self.phase = phase
        print(f"# {self.elapsed():.0f} s: {phase}", file=sys.stderr, flush=True)

    def needs(self, seconds: float, what: str) -> None:
        """Calibration found that the rest takes about `seconds` on this machine now."""
        limit = min(MAX_LIMIT_S, self.elapsed() + LIMIT_FACTOR * seconds + LIMIT_SLACK_S)
        if limit > self.limit_s:
            print(
                f"# {what}: about {seconds:.0f} s left at this pace; limit now {limit:.0f} s "
                f"(was {self.limit_s:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            self.limit_s = limit


def calibrated(budget_s: float, each_s: float, *, least: int, most: int) -> int:
    """How many repetitions of `each_s` seconds (timed in a warm-up) fit in `budget_s`, within
    [least, most]: on an unloaded machine `most`, on a slow one fewer samples of the same kind."""
    fits = int(budget_s / each_s) if each_s > 0 else most
    return max(least, min(most, fits))


def connections(limit: int) -> aiohttp.TCPConnector:
    """A client connection pool of at most `limit`, never reusing a connection the server may be
    closing."""
    return aiohttp.TCPConnector(limit=limit, keepalive_timeout=KEEPALIVE_S)


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for children that only take --port)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


_DROPPED_PREFIXES = ("STUDIO_", "SLACK_", "TELEGRAM_", "OTEL_")
_DROPPED_SUFFIXES = ("_API_KEY", "_API_BASE")


def base_env(**extra: str) -> dict[str, str]:
    """This environment without the service's settings, channel tokens or provider keys (no
    real network call), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and not k.endswith(_DROPPED_SUFFIXES)
    }
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT), **extra)
    return env


async def child_result(module: str, *args: str, cwd: str) -> Any:
    """Run `python -m MODULE ARGS` in `cwd` (the repository on PYTHONPATH, `base_env`) to its end,
    off the event loop; the JSON its last line of output holds. `RuntimeError` with the end of
    its stderr when it fails."""
    done = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "-m", module, *args],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, children get SIGTERM if the bench dies without cleaning up (e.g. SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None

    def set_pdeathsig() -> None:
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_pdeathsig


@dataclass(slots=True)
class Child:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def rss_mb(self) -> float:
        """Resident set size (VmRSS in /proc/PID/status), MB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far (Linux /proc; 0.0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def child(
    args: Sequence[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[Child]:
    """A child process whose output goes to `log`; always stopped on the way out, errors too."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            list(args),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),  # only calls prctl: safe after fork
        )
    try:
        yield Child(process, log)
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_http(url: str, proc: Child, timeout_s: float = 2 * FIRST_ANSWER_S) -> float:
    """Seconds until GET `url` answers 200; raises with the child's output if it never does."""
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        while time.perf_counter() - started < timeout_s:
            if proc.process.poll() is not None:
                raise RuntimeError(
                    f"{url}: process exited with {proc.process.returncode}:\n{proc.log_tail()}"
                )
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            await asyncio.sleep(0.01)
    raise RuntimeError(f"{url} not answering 200 after {timeout_s:.0f} s:\n{proc.log_tail()}")


async def wait_file(path: Path, proc: Child, timeout_s: float = FIRST_ANSWER_S) -> str:
    """The content of `path` once a child has written it."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        text = _read(path)
        if text is not None:
            return text
        if proc.process.poll() is not None:
            raise RuntimeError(f"process exited with {proc.process.returncode}:\n{proc.log_tail()}")
        await asyncio.sleep(0.01)
    raise RuntimeError(f"{path} not written after {timeout_s:.0f} s:\n{proc.log_tail()}")


async def fake_server(stack: ExitStack, tmp: Path, module: str, name: str) -> tuple[Child, str]:
    """Start `python -m MODULE tmp/NAME.port` (a fake that serves on a free port it writes to
    that file) for the life of `stack`, its output in `tmp/NAME.log`: the process and its root
    URL."""
    port_file = tmp / f"{name}.port"
    fake = stack.enter_context(
        child([PYTHON, "-m", module, str(port_file)], env=base_env(), log=tmp / f"{name}.log")
    )
    return fake, f"http://{HOST}:{await wait_file(port_file, fake)}"


async def model_server(stack: ExitStack, tmp: Path) -> tuple[Child, str]:
    """Start `bench.llm_server`, the zero-latency fake model, for the life of `stack`: the
    process and its OpenAI-compatible `/v1` base URL."""
    llm, root = await fake_server(stack, tmp, "bench.llm_server", "llm")
    return llm, f"{root}/v1"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
