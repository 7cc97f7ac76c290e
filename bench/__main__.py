"""`python -m bench [NAME ...]`: run every `bench_*.py` (or those whose name contains a NAME),
print each figure as `FIGURE name value`, and write `bench/RESULTS.md`.

A benchmark module exposes `BUDGET_S` (what it takes on an unloaded machine), `FIGURES` (the
names of every figure it reports) and `async def run(report: Report) -> None`, which adds figures
to the report as each phase ends. The module may run LIMIT_FACTOR x BUDGET_S + LIMIT_SLACK_S,
more when it calibrates (`Report.needs`). A module that fails or runs past its limit keeps the
figures it reported; the missing ones are named, with the phase that ran out, here and in
RESULTS.md, and the others still run. A missed goal is reported, never hidden. The exit status
is 0 unless the harness itself breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import Figure, Report

HERE = Path(__file__).resolve().parent
CLEANUP_S = 30.0  # for a module stopped at its limit to stop its processes


class LimitReached(Exception):
    """A module ran past its time limit (and was stopped)."""


@dataclass(slots=True)
class Outcome:
    module: str
    seconds: float = 0.0
    limit_s: float = 0.0
    figures: list[Figure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None


def discover(selected: list[str]) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


async def run_module(name: str) -> Outcome:
    outcome = Outcome(name)
    started = time.perf_counter()
    print(f"# running {name}", file=sys.stderr, flush=True)
    report: Report | None = None
    expected: tuple[str, ...] = ()
    try:
        module = importlib.import_module(f"bench.{name}")
        expected = tuple(module.FIGURES)
        report = Report.for_budget(float(module.BUDGET_S))
        await _within_limit(module.run(report), report)
    except Exception as exc:
        if not isinstance(exc, LimitReached):
            traceback.print_exc()
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        outcome.error = f"{type(exc).__name__}: {why}" if why else type(exc).__name__
        print(f"# FAILED {name}: {outcome.error}", file=sys.stderr, flush=True)
    outcome.seconds = time.perf_counter() - started
    if report is not None:
        outcome.limit_s = report.limit_s
        outcome.figures = list(report.figures)
    reported = {f.name for f in outcome.figures}
    outcome.missing = [n for n in expected if n not in reported]
    for figure in outcome.figures:
        print(f"FIGURE {figure.name} {figure.value}", flush=True)
        if figure.name not in expected:
            print(f"# {name}: {figure.name} is not in its FIGURES", file=sys.stderr, flush=True)
    if outcome.missing:
        print(f"# {name}: missing {', '.join(outcome.missing)}", file=sys.stderr, flush=True)
    print(
        f"# {name} took {outcome.seconds:.1f} s (limit {outcome.limit_s:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return outcome


async def _within_limit(measuring: Coroutine[Any, Any, None], report: Report) -> None:
    """Run a module until it ends or its limit (which calibration may move) has passed; then
    stop it (its processes are stopped on the way out) and raise LimitReached."""
    task = asyncio.ensure_future(measuring)
    while not task.done():
        left = report.deadline - time.monotonic()
        if left <= 0:
            task.cancel()
            await asyncio.wait({task}, timeout=CLEANUP_S)
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the limit is the error to report
            raise LimitReached(
                f"ran past its limit of {report.limit_s:.0f} s during {report.phase}"
            )
        await asyncio.wait({task}, timeout=left)
    task.result()


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    versions = []
    for package in ("fastapi", "uvicorn", "litellm", "aiohttp"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    return (
        f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {', '.join(versions)}; "
        f"load average at start {load}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shortfall(outcome: Outcome) -> str:
    missing = ", ".join(f"`{n}`" for n in outcome.missing)
    if outcome.error and missing:
        return f"{outcome.error}; missing {missing}"
    return outcome.error or f"missing {missing} (not measured)"


def write_results(outcomes: list[Outcome], started: datetime, machine: str, total_s: float) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC in {total_s:.0f} s on {machine}.",
        "",
        "Written by `python -m bench` (`make bench`). The web figures compare the platform with a "
        "hand-written baseline measured in the same run against the same zero-latency model "
        "server, so machine speed mostly cancels out; absolute times on a shared machine are "
        "noise.",
        "",
        "| figure | value | goal | met? | how it is measured |",
        "|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        for f in outcome.figures:
            met = {None: "", True: "yes", False: "**NO**"}[f.met]
            value = f"{f.value:g} {f.unit}".strip()
            lines.append(f"| `{f.name}` | {value} | {f.goal} | {met} | {_cell(f.how)} |")
    missed = [f.name for o in outcomes for f in o.figures if f.met is False]
    failed = [o for o in outcomes if o.error or o.missing]
    lines.append("")
    if missed:
        lines.append(f"Goals missed: {', '.join(f'`{m}`' for m in missed)}.")
    else:
        lines.append("All goals met" + (" by the figures measured." if failed else "."))
    if failed:
        lines += ["", "Benchmarks that failed or ran out of time (figures missing):", ""]
        lines += [f"- `{o.module}`: {_cell(_shortfall(o))}" for o in failed]
    lines += [
        "",
        "Time per benchmark (and the limit it had): "
        + ", ".join(f"{o.module} {o.seconds:.0f} s ({o.limit_s:.0f} s)" for o in outcomes)
        + ".",
    ]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


async def main(selected: list[str]) -> int:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    machine = _machine()
    names = discover(selected)
    if not names:
        print(f"no benchmark matches {selected}", file=sys.stderr)
        return 2
    outcomes = [await run_module(name) for name in names]
    write_results(outcomes, started, machine, time.perf_counter() - clock)
    missed = [f for o in outcomes for f in o.figures if f.met is False]
    for f in missed:
        print(f"# GOAL MISSED {f.name} {f.value} (goal {f.goal})", file=sys.stderr)
    for o in outcomes:
        if o.error or o.missing:
            print(f"# BENCHMARK FAILED {o.module}: {_shortfall(o)}", file=sys.stderr)
    print(f"# wrote {HERE / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
