"""Evaluation throughput: answers scored per second by an `/eval` run (the background run,
contains and latency evaluators, results stored) against live turns per second of the same bot
through the runtime's web turn, 4 at a time on both sides, measured in one process
(`bench/eval_turns.py`) in alternating rounds.

Two bots: on the zero-latency `offline` model (the platform's own cost: a row's turn runs in
memory, a live turn reads and writes the database), and on the zero-latency model server (a
model call per answer through litellm, as evaluations with a real model make). An evaluation
runs the live turn code (the one turn engine), so it should keep up with live traffic: the
ratio with the model server is the figure with a goal."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.common import Figure, Report, child_result, model_server

BUDGET_S = 40  # start-up ~8 s (litellm), the offline bot ~5 s, the model bot ~15 s
FIGURES = (
    "eval_rows_per_s",
    "live_turns_per_s",
    "eval_vs_live_ratio",
    "eval_model_rows_per_s",
    "live_model_turns_per_s",
    "eval_vs_live_model_ratio",
)
_SIDE = {"offline-bot": ("", "offline model"), "model-bot": ("_model", "zero-latency model server")}


async def run(report: Report) -> None:
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-evals-") as name:
        tmp = Path(name)
        _, model_base = await model_server(stack, tmp)
        data = tmp / "data"
        data.mkdir()
        report.begin("an offline bot, then a bot on the model server: live turns and /eval runs")
        found = await child_result("bench.eval_turns", str(data), model_base, cwd=name)
    for bot, (suffix, model) in _SIDE.items():
        side = found[bot]
        how = (
            f"{model}; median of {side['rounds']} rounds (ABBA) of {side['answers']} answers a "
            "side, 4 at a time; eval: one /eval run of the dataset's rows on production and the "
            "draft (contains + latency evaluators), from its start to its results stored; live: "
            "web turns via Runtime.answer in 4 conversations (history 10), SQLite"
        )
        goal = ">= 0.8" if suffix else ""
        report.add(
            Figure(
                f"eval{suffix}_rows_per_s", round(side["eval_rows_per_s"], 1), "rows/s", "", how
            ),
            Figure(
                f"live{suffix}_turns_per_s", round(side["live_turns_per_s"], 1), "turns/s", "", how
            ),
            Figure(
                f"eval_vs_live{suffix}_ratio",
                round(side["ratio"], 2),
                "",
                goal,
                "eval rows/s / live turns/s; " + how,
            ),
        )
