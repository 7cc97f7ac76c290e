"""Child process of `bench_trace`: CPU per turn of the 5-step flow bot of `pipeline_turns` with
turn tracing as built (each step timed and described, the trace stored with the answer) and with
a hand-written copy of the pipeline loop that records nothing (and no trace stored), blocks of
turns alternating between the two in one process, through the runtime's web turn.

Usage: python -m bench.trace_turns DATA_DIR SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.pipeline_turns import FLOW, WARMUP, _ms, bench_services, web_turns

BLOCK = 100


async def _untraced_run(self: Any, ctx: Any) -> Any:
    """`CompiledBot.run` as it was before turns were traced: the baseline."""
    from runtime.pipeline import MAX_TURN_STEPS, TurnOutput, Usage

    usage = Usage(0, 0, 0.0)
    replies: list[str] = []
    error: str | None = None
    answered: str | None = None
    path: list[str] = []
    current = self.entry
    for _ in range(MAX_TURN_STEPS):
        node = self.nodes[current]
        path.append(current)
        result = await node.run(ctx)
        usage = usage + result.usage
        if result.reply:
            replies.append(result.reply)
            answered = current
        if result.error:
            error = result.error
            break
        following = result.next or node.next
        if following is None:
            break
        current = following
    reply = "\n\n".join(replies) if replies else self.spec.fallback
    return TurnOutput(
        reply=reply,
        usage=usage,
        error=error,
        step=answered if replies else None,
        path=tuple(path),
        tool_calls=tuple(ctx.tool_calls),
        handed_over=ctx.handed_over,
    )


async def main(data: Path, seconds: float) -> dict[str, Any]:
    import runtime.pipeline as pipeline

    traced_run, traced_record = pipeline.CompiledBot.run, pipeline.__dict__["trace_record"]

    def tracing(on: bool) -> None:
        """Turns traced as built, or through the baseline loop with no trace stored."""
        pipeline.CompiledBot.run = traced_run if on else _untraced_run  # type: ignore[method-assign]
        pipeline.__dict__["trace_record"] = traced_record if on else (lambda output, ctx: None)

    services = await bench_services(data)
    try:
        ops = services.ops
        caller = await ops.authenticate((await ops.create_team("bench")).key)
        await ops.import_bot(caller, FLOW)
        await ops.promote(caller, "flow-bot", to="staging")
        await ops.promote(caller, "flow-bot", to="production")
        deployment = (await ops.deploy(caller, "flow-bot", channel="web")).id
        sent = 0

        async def turns(count: int) -> float:
            nonlocal sent
            sent += count
            return await web_turns(services, deployment, count, first=sent - count)

        for on in (True, False):
            tracing(on)
            await turns(WARMUP)
        traced: list[float] = []
        untraced: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(traced) < 4:
            for on in (True, False, False, True):  # ABBA: drift hits both alike
                tracing(on)
                (traced if on else untraced).append(await turns(BLOCK))
        tracing(True)
        return {
            "traced_ms": _ms(traced),
            "untraced_ms": _ms(untraced),
            "blocks": len(traced),
            "block": BLOCK,
        }
    finally:
        await services.close()


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
    print(json.dumps(result))
