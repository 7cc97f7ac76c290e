"""Start-up: `serve` on an empty data directory until /healthz answers, and `--help`."""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, Figure, base_env, child, free_port, wait_healthy


async def _cold_start() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        started = time.perf_counter()
        env = base_env(STUDIO_DATA_DIR=str(Path(tmp) / "data"))
        with child(
            [PYTHON, str(ROOT / "main.py"), "serve", "--port", str(port)], env=env, cwd=Path(tmp)
        ) as process:
            await wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            return time.perf_counter() - started


def _help() -> float:
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, str(ROOT / "main.py"), "--help"], check=True, capture_output=True, env=base_env()
    )
    return time.perf_counter() - started


async def run() -> list[Figure]:
    cold = statistics.median([await _cold_start() for _ in range(3)])
    helps = statistics.median([_help() for _ in range(5)])
    return [
        Figure(
            "serve_cold_start_s",
            round(cold, 2),
            "s",
            "<= 3",
            "spawn `main.py serve` on an empty data dir until /healthz is 200; median of 3",
        ),
        Figure(
            "cli_help_s", round(helps, 3), "s", "<= 0.5", "`main.py --help` wall time; median of 5"
        ),
    ]
