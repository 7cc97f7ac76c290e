"""Run every benchmark, print `FIGURE name value` lines and write `bench/RESULTS.md`."""

from __future__ import annotations

import asyncio
import importlib
import platform
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import Figure

HERE = Path(__file__).parent


async def main(selected: list[str]) -> int:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    figures: list[Figure] = []
    failures: list[str] = []
    for name in names:
        print(f"# running {name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            found = await module.run()
        except Exception:
            failures.append(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}")
            traceback.print_exc()
            continue
        for figure in found:
            print(f"FIGURE {figure.name} {figure.value}", flush=True)
        figures.extend(found)
    _write(figures, failures)
    return 0


def _write(figures: list[Figure], failures: list[str]) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}). Figures compare the "
        "platform with a hand-written baseline in the same run; absolute times on a shared "
        "machine are noise.",
        "",
        "| figure | value | goal | met | how |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        met = {None: "", True: "yes", False: "**no**"}[f.met]
        lines.append(f"| `{f.name}` | {f.value} {f.unit} | {f.goal} | {met} | {f.how} |")
    if failures:
        lines += ["", "Benchmarks that failed:", ""] + [f"- {f}" for f in failures]
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
