"""The turn engine's cost for a flow: CPU per turn of a 5-step pipeline bot (router -> extract ->
template -> llm, with a template branch) above a plain bot's, both on the zero-latency `offline`
model, in one process (`bench/pipeline_turns.py`), blocks of turns alternating between them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Figure, Report, child_result

MEASURE_S = 12.0
BUDGET_S = MEASURE_S + 15  # start-up, bots, warm-up
FIGURES = ("pipeline_turn_overhead_ms", "pipeline_turn_cpu_ms", "plain_turn_cpu_ms")


async def run(report: Report) -> None:
    # A child process of its own (the repository on PYTHONPATH), so the harness stays small.
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as name:
        data = Path(name) / "data"
        data.mkdir()
        found = await child_result("bench.pipeline_turns", str(data), str(MEASURE_S), cwd=name)
    how = (
        f"median of {found['blocks']} blocks of {found['block']} sequential web turns per bot, "
        "blocks alternating ABBA; process CPU (user+sys) per turn; offline model"
    )
    report.add(
        Figure(
            "pipeline_turn_overhead_ms",
            round(found["flow_ms"] - found["plain_ms"], 3),
            "ms",
            "<= 1",
            "flow bot's CPU per turn - plain bot's; " + how,
        ),
        Figure("pipeline_turn_cpu_ms", round(found["flow_ms"], 3), "ms", "", how),
        Figure("plain_turn_cpu_ms", round(found["plain_ms"], 3), "ms", "", how),
    )
