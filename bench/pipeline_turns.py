"""Child process of `bench_pipeline`: CPU per turn of a plain bot and of a 5-step pipeline bot
(router -> extract -> template -> llm, plus a template branch), both answering with the `offline`
model (zero latency, no network), through the runtime's web turn (`Runtime.answer`: the turn
engine, history, memory and the stored turn). Prints one JSON object.

Usage: python -m bench.pipeline_turns DATA_DIR SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

PLAIN = {"name": "plain-bot", "model": "offline", "history": 10}
FLOW = {
    "name": "flow-bot",
    "model": "offline",
    "history": 10,
    "pipeline": [
        {
            "id": "triage",
            "kind": "router",
            "params": {"routes": [{"keyword": "invoice", "to": "billing"}], "default": "email"},
        },
        {
            "id": "billing",
            "kind": "template",
            "params": {"text": "Billing questions go to billing@example.com."},
        },
        {
            "id": "email",
            "kind": "extract",
            "params": {
                "fields": {
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}},
                }
            },
            "next": "greet",
        },
        {
            "id": "greet",
            "kind": "template",
            "params": {"text": "Hello {{ participant.email or 'there' }}!"},
            "next": "answer",
        },
        {"id": "answer", "kind": "llm"},
    ],
}
USERS = 50
BLOCK = 100  # turns per measured block; blocks alternate between the bots
WARMUP = 200


async def bench_services(data: Path) -> Any:
    """The whole service (no HTTP) on SQLite and an in-memory Qdrant in `data`."""
    from main import build_services, load_settings

    settings = load_settings(
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{data / 'studio.db'}",
        qdrant_url=":memory:",
    )
    return await build_services(settings)


async def web_turns(services: Any, deployment: str, count: int, *, first: int) -> float:
    """CPU seconds per turn of `count` sequential web turns to `deployment` from `USERS` end
    users, messages numbered from `first`."""
    from runtime.messages import Address, IncomingMessage

    started = time.process_time()
    for sent in range(first, first + count):
        user = f"u{sent % USERS}"
        address = Address(channel="web", deployment_id=deployment, conversation=user, user=user)
        text = f"question {sent}: how do refunds work? I am {user}@example.com"
        reply = await services.runtime.answer(IncomingMessage(address=address, text=text))
        if reply.error:
            raise RuntimeError(f"{deployment}: {reply.error}")
    return (time.process_time() - started) / count


async def main(data: Path, seconds: float) -> dict[str, Any]:
    services = await bench_services(data)
    try:
        ops = services.ops
        key = await ops.create_team("bench")
        caller = await ops.authenticate(key.key)
        deployments = {}
        for spec in (PLAIN, FLOW):
            name = str(spec["name"])
            await ops.import_bot(caller, spec)
            await ops.promote(caller, name, to="staging")
            await ops.promote(caller, name, to="production")
            deployments[name] = (await ops.deploy(caller, name, channel="web")).id
        sent = 0

        async def turns(bot: str, count: int) -> float:
            nonlocal sent
            sent += count
            return await web_turns(services, deployments[bot], count, first=sent - count)

        for bot in deployments:
            await turns(bot, WARMUP)
        plain: list[float] = []
        flow: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(plain) < 4:
            # ABBA: linear drift on a shared machine hits both bots alike
            for bot in ("plain-bot", "flow-bot", "flow-bot", "plain-bot"):
                (plain if bot == "plain-bot" else flow).append(await turns(bot, BLOCK))
        return {"plain_ms": _ms(plain), "flow_ms": _ms(flow), "blocks": len(plain), "block": BLOCK}
    finally:
        await services.close()


def _ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] * 1000  # the median block: a stall elsewhere is not ours


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
    print(json.dumps(result))
