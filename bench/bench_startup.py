"""Start-up: `main.py serve` on an empty data directory until /healthz is 200, and `--help`.

Few repetitions (medians of 3 and 5): the first cold start tells how long the rest will take, and
the module's limit moves to fit them.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import HOST, PYTHON, ROOT, Figure, Report, base_env, child, free_port, wait_http

COLD_STARTS = 3
HELPS = 5
BUDGET_S = COLD_STARTS * 1.0 + HELPS * 0.1  # unloaded: a cold start ~0.8 s, --help ~0.09 s
FIGURES = ("serve_cold_start_s", "cli_help_s")


async def _cold_start() -> float:
    """Seconds from spawning `serve` on an empty data directory to the first 200 from /healthz."""
    with tempfile.TemporaryDirectory(prefix="bench-start-") as name:
        tmp = Path(name)
        data = tmp / "data"  # does not exist yet: the service creates everything
        port = free_port()
        env = base_env(
            STUDIO_DATA_DIR=str(data),
            STUDIO_DATABASE_URL=f"sqlite+aiosqlite:///{data / 'studio.db'}",
        )
        started = time.perf_counter()
        with child(
            [PYTHON, str(ROOT / "main.py"), "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            log=tmp / "serve.log",
        ) as proc:
            await wait_http(f"http://{HOST}:{port}/healthz", proc)
            return time.perf_counter() - started


def _help() -> float:
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, str(ROOT / "main.py"), "--help"],
        check=True,
        capture_output=True,
        env=base_env(),
        cwd=ROOT,
        timeout=60,
    )
    return time.perf_counter() - started


async def run(report: Report) -> None:
    report.begin("the cold starts")
    colds = [await _cold_start()]
    report.needs((COLD_STARTS - 1 + HELPS) * colds[0], f"a cold start took {colds[0]:.1f} s")
    colds += [await _cold_start() for _ in range(COLD_STARTS - 1)]
    report.add(
        Figure(
            "serve_cold_start_s",
            round(statistics.median(colds), 2),
            "s",
            "<= 3",
            f"spawn `main.py serve` on an empty data dir until /healthz is 200; median of "
            f"{COLD_STARTS} ({', '.join(f'{c:.2f}' for c in colds)})",
        )
    )
    report.begin("main.py --help")
    helps = [_help() for _ in range(HELPS)]  # nothing else runs meanwhile
    report.add(
        Figure(
            "cli_help_s",
            round(statistics.median(helps), 3),
            "s",
            "<= 0.5",
            f"wall time of `main.py --help`; median of {HELPS} "
            f"({', '.join(f'{h:.3f}' for h in helps)})",
        )
    )
