"""What the benchmarks share: figures, child processes on loopback, percentiles."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True, slots=True)
class Figure:
    name: str
    value: float
    unit: str = ""
    goal: str = ""  # e.g. ">= 0.8"; empty for a raw figure
    how: str = ""

    @property
    def met(self) -> bool | None:
        if not self.goal:
            return None
        op, _, bound = self.goal.partition(" ")
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT), **extra)
    return env


@contextmanager
def child(
    args: Sequence[str], *, env: dict[str, str], cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process that is always stopped, whatever happens."""
    process = subprocess.Popen(
        list(args), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> float:
    """Seconds until `url` answers 200."""
    started = time.perf_counter()
    async with httpx.AsyncClient() as client:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"process exited early: {err[-2000:]}")
            try:
                if (await client.get(url, timeout=1)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError(f"{url} not healthy after {timeout_s} s")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]
