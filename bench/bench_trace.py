"""What tracing every turn costs: CPU per turn of a 5-step flow bot (router -> extract ->
template -> llm on the `offline` model) with each step timed, described and stored with the
answer, above the same turns through a hand-written loop that records nothing
(`bench/trace_turns.py`), blocks alternating in one process."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Figure, Report, child_result

MEASURE_S = 12.0
BUDGET_S = MEASURE_S + 15  # start-up, the bot, warm-up
FIGURES = ("trace_overhead_ms", "traced_turn_cpu_ms", "untraced_turn_cpu_ms")


async def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as name:
        data = Path(name) / "data"
        data.mkdir()
        found = await child_result("bench.trace_turns", str(data), str(MEASURE_S), cwd=name)
    how = (
        f"median of {found['blocks']} blocks of {found['block']} sequential web turns each way, "
        "blocks alternating ABBA; process CPU (user+sys) per turn; offline model"
    )
    report.add(
        Figure(
            "trace_overhead_ms",
            round(found["traced_ms"] - found["untraced_ms"], 3),
            "ms",
            "<= 0.2",
            "traced turn's CPU - untraced turn's; " + how,
        ),
        Figure("traced_turn_cpu_ms", round(found["traced_ms"], 3), "ms", "", how),
        Figure("untraced_turn_cpu_ms", round(found["untraced_ms"], 3), "ms", "", how),
    )
