"""`python -m bench [NAME ...]`: run every `bench_*.py` (or those whose name contains a NAME),
print each figure as `FIGURE name value`, and write `bench/RESULTS.md`.

A benchmark module exposes `async def run() -> list[Figure]`. A failing module is reported (here
and in RESULTS.md) and the others still run; a missed goal is reported, never hidden. The exit
status is 0 unless the harness itself breaks.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench.common import Figure

HERE = Path(__file__).resolve().parent
MODULE_TIMEOUT_S = 240.0


@dataclass(slots=True)
class Outcome:
    module: str
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)
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
    try:
        module = importlib.import_module(f"bench.{name}")
        found = await asyncio.wait_for(module.run(), timeout=MODULE_TIMEOUT_S)
        outcome.figures = [f for f in found if isinstance(f, Figure)]
        if len(outcome.figures) != len(found):
            raise TypeError(f"{name}.run() must return a list of Figure")
    except Exception as exc:
        traceback.print_exc()
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        outcome.error = f"{type(exc).__name__}: {why}" if why else type(exc).__name__
        print(f"# FAILED {name}: {outcome.error}", file=sys.stderr, flush=True)
    outcome.seconds = time.perf_counter() - started
    for figure in outcome.figures:
        print(f"FIGURE {figure.name} {figure.value}", flush=True)
    print(f"# {name} took {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
    return outcome


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
    failed = [o for o in outcomes if o.error]
    lines.append("")
    lines.append(
        f"Goals missed: {', '.join(f'`{m}`' for m in missed)}." if missed else "All goals met."
    )
    if failed:
        lines += ["", "Benchmarks that failed (no figures from them):", ""]
        lines += [f"- `{o.module}`: {_cell(o.error or '')}" for o in failed]
    lines += [
        "",
        "Time per benchmark: " + ", ".join(f"{o.module} {o.seconds:.0f} s" for o in outcomes) + ".",
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
        if o.error:
            print(f"# BENCHMARK FAILED {o.module}: {o.error}", file=sys.stderr)
    print(f"# wrote {HERE / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
