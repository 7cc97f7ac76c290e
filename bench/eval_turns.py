"""Child process of `bench_evals`: rows scored per second by an evaluation run (`/eval`: the
Studio's `EvalFeature` in the background, evaluators, results stored) and live turns answered
per second by the same bot's production version through the runtime's web turn
(`Runtime.answer`: the turn engine, history from the database, the stored turn), 4 at a time on
both sides (an evaluation's concurrency; live: 4 conversations at once). Rounds alternate ABBA
after a warm-up. Two bots: one on the `offline` model (the platform's own cost), one on the
zero-latency model server at MODEL_BASE (a model call per answer, through litellm). Prints one
JSON object with the medians per bot.

Usage: python -m bench.eval_turns DATA_DIR MODEL_BASE
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONCURRENCY = 4  # an evaluation's (`runtime.evaluation.run.MAX_CONCURRENT_ROWS`)


@dataclass(frozen=True, slots=True)
class Side:
    """A bot measured: its model, dataset rows (scored on VERSIONS) and rounds."""

    name: str
    model: str
    rows: int
    rounds: int


VERSIONS = ["production", "draft"]  # the same spec twice: rows x 2 answers a run
SIDES = (
    Side("offline-bot", "offline", rows=1000, rounds=6),
    Side("model-bot", "openai/bench-model", rows=150, rounds=2),
)


async def main(data: Path, model_base: str) -> dict[str, Any]:
    from main import build_services, load_settings
    from runtime.evaluation.run import MAX_CONCURRENT_ROWS

    assert MAX_CONCURRENT_ROWS == CONCURRENCY
    settings = load_settings(
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{data / 'studio.db'}",
        qdrant_url=":memory:",
        llm_api_base=model_base,
    )
    services = await build_services(settings)
    try:
        key = await services.ops.create_team("bench")
        caller = await services.ops.authenticate(key.key)
        return {side.name: await _measure(services, caller, side) for side in SIDES}
    finally:
        await services.close()


async def _measure(services: Any, caller: Any, side: Side) -> dict[str, Any]:
    from builders.dataset import DatasetContent, DatasetRow, Evaluator
    from runtime.messages import Address, IncomingMessage
    from storage.datasets import DatasetRepository

    ops, evals = services.ops, services.studio.evals
    spec = {"name": side.name, "model": side.model, "history": 10, "fallback": "Refunds: 5 days."}
    await ops.import_bot(caller, spec)
    await ops.promote(caller, side.name, to="staging")
    await ops.promote(caller, side.name, to="production")
    deployment = (await ops.deploy(caller, side.name, channel="web")).id
    draft = await ops.draft(caller, side.name)
    content = DatasetContent(
        rows=[
            DatasetRow(id=n, turns=[f"question {n}: how do refunds work?"], expected="refund")
            for n in range(1, side.rows + 1)
        ],
        evaluators=[Evaluator(kind="contains"), Evaluator(kind="latency", max_ms=5_000)],
    )
    async with services.db.write() as session:
        await DatasetRepository(session).save(
            team_id=caller.team_id, bot_id=draft.bot_id, name="bench", content=content, actor="b"
        )
    answers = side.rows * len(VERSIONS)
    sent = 0

    async def live() -> float:
        """Turns per second of as many live turns as a run's answers, 4 conversations at once."""
        nonlocal sent
        left = answers

        async def conversation(user: str) -> None:
            nonlocal sent, left
            while left > 0:
                left -= 1
                sent += 1
                address = Address(
                    channel="web", deployment_id=deployment, conversation=user, user=user
                )
                text = f"question {sent}: how do refunds work?"
                reply = await services.runtime.answer(IncomingMessage(address=address, text=text))
                if reply.error:
                    raise RuntimeError(f"live turn: {reply.error}")

        started = time.perf_counter()
        await asyncio.gather(*(conversation(f"u{n}-{sent}") for n in range(CONCURRENCY)))
        return answers / (time.perf_counter() - started)

    async def evaluation() -> float:
        """Answers scored per second by one run, from its start to its results stored."""
        started = time.perf_counter()
        begun = await evals.start(caller, side.name, dataset="bench", versions=VERSIONS, where=None)
        await evals.drain()
        elapsed = time.perf_counter() - started
        run_id = begun.run.id
        run = (await evals.detail(caller, side.name, run_id, results=False)).run
        if run.status != "done" or run.done != answers:
            raise RuntimeError(f"evaluation run: {run.status} {run.error}")
        if run.summary is None or run.summary[0]["score"] != 1.0:
            raise RuntimeError(f"evaluation run scored {run.summary}")
        return answers / elapsed

    await live()  # warm-up: imports, caches, the database's pages
    await evaluation()
    live_rates: list[float] = []
    eval_rates: list[float] = []
    for number in range(side.rounds):
        # ABBA: linear drift on a shared machine hits both alike
        order = (live, evaluation) if number % 2 == 0 else (evaluation, live)
        for measure in order:
            (live_rates if measure is live else eval_rates).append(await measure())
    live_rate, eval_rate = statistics.median(live_rates), statistics.median(eval_rates)
    return {
        "eval_rows_per_s": eval_rate,
        "live_turns_per_s": live_rate,
        "ratio": eval_rate / live_rate,
        "answers": answers,
        "rounds": side.rounds,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))))
