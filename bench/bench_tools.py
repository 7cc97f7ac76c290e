"""Tools: the platform's CPU per tool call above a raw HTTP call to the same service.

The service (`bench/tools_server.py`, zero latency) runs in a process of its own, so only the
caller's CPU is counted: `time.process_time` of this process around blocks of sequential calls.
The platform side is the whole `ToolGateway.call` path for an OpenAPI GET operation described
from the service's own document (`OpenApiExecutor.describe`): the function looked up, the
arguments parsed and validated against their schema, the secret revealed (an in-memory
`SecretSource`) and sent as a bearer token, the request built and sent (loopback: private
addresses allowed, so no DNS lookup), the body read under the size cap, its JSON compacted, the
secret masked and the call recorded. The raw side is a hand-written `httpx` GET of the same URL
with the same header, its body read, on the same client. Blocks alternate ABBA so drift on a
shared machine hits both sides; each side's figure is its median block.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import HOST, PYTHON, Figure, Report, base_env, child, wait_file
from builders.spec import BotSpec
from runtime.tools.gateway import ToolGateway
from runtime.tools.openapi import OpenApiExecutor

MEASURE_S = 10.0
WARMUP = 300  # calls per side
BLOCK = 200  # calls per measured block
SECRET = "bench-secret-value"
BUDGET_S = MEASURE_S + 10  # start-up, describe, warm-up
FIGURES = ("tool_call_overhead_ms", "tool_call_cpu_ms", "raw_http_call_cpu_ms")


class _Secrets:
    async def reveal(self, team_id: int, name: str) -> str | None:
        return SECRET if name == "crm" else None


async def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tools-") as name, ExitStack() as stack:
        tmp = Path(name)
        report.begin("start the service")
        port_file = tmp / "tools.port"
        server = stack.enter_context(
            child(
                [PYTHON, "-m", "bench.tools_server", str(port_file)],
                env=base_env(),
                log=tmp / "tools.log",
            )
        )
        base = f"http://{HOST}:{await wait_file(port_file, server)}"
        async with httpx.AsyncClient(trust_env=False) as client:
            executor = OpenApiExecutor(client=client, allow_private=True)
            tool = await executor.describe(
                name="orders",
                url=f"{base}/openapi.json",
                wanted=["getOrder"],
                auth="crm",
                secret=None,
            )
            spec = BotSpec(name="bench-bot", tools=[tool])
            gateway = ToolGateway([executor], secrets=_Secrets())
            url = f"{base}/orders/A1"
            headers = {"Authorization": f"Bearer {SECRET}"}

            async def platform() -> None:
                result, _ = await gateway.call(spec, "getOrder", '{"id": "A1"}', team_id=1)
                if result.status != "ok":
                    raise RuntimeError(f"the tool call failed: {result.status} {result.content}")

            async def raw() -> None:
                response = await client.get(url, headers=headers)
                response.raise_for_status()
                response.json()

            report.begin("warm-up")
            for _ in range(WARMUP):
                await platform()
                await raw()
            report.begin(f"sequential calls, {MEASURE_S:g} s")
            tool_ms: list[float] = []
            raw_ms: list[float] = []
            deadline = time.perf_counter() + MEASURE_S
            while time.perf_counter() < deadline or len(tool_ms) < 4:
                for side in (platform, raw, raw, platform):
                    samples = tool_ms if side is platform else raw_ms
                    samples.append(await _cpu_ms(side, BLOCK))
    how = (
        f"median of {len(tool_ms)} blocks of {BLOCK} sequential calls per side, blocks "
        "alternating ABBA; this process's CPU (user+sys) per call, the service in another "
        "process; an OpenAPI GET through ToolGateway.call vs a hand-written httpx GET"
    )
    platform_ms, baseline_ms = _median(tool_ms), _median(raw_ms)
    report.add(
        Figure(
            "tool_call_overhead_ms",
            round(platform_ms - baseline_ms, 3),
            "ms",
            "<= 1",
            "tool call's CPU - the raw GET's; " + how,
        ),
        Figure("tool_call_cpu_ms", round(platform_ms, 3), "ms", "", how),
        Figure("raw_http_call_cpu_ms", round(baseline_ms, 3), "ms", "", how),
    )


async def _cpu_ms(call: Callable[[], Awaitable[None]], count: int) -> float:
    """CPU milliseconds per call of `count` sequential calls."""
    started = time.process_time()
    for _ in range(count):
        await call()
    return (time.process_time() - started) / count * 1000


def _median(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2]  # a stall elsewhere is not ours
