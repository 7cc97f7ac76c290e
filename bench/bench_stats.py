"""Stats: the time `/stats BOT 30d` takes to draw its chart (the series read from the database,
then the PNG rendered off the event loop) on a SQLite database holding 30 days of TURNS answered
turns (with their questions), against a hand-written baseline in the same run: one plain SQL
group-by (turns per day and version) and a minimal matplotlib bar chart of it.

The bot's traffic: versions 1 to 3 in turn over the 30 days, then an A/B test of v3 against v4
for the last 10 days; two channels (web and telegram); about 1% failed turns, 0.5% blocked by a
guardrail, 5% at an unknown price, and a few 👎. The platform's side is what the Studio runs for
`/stats BOT 30d` (`Operations.stats_series` and `studio.stats_chart.stats_chart`), with a
service built as `serve` builds it (`main.build_services`). Rounds alternate (ABBA) after a
warm-up; the figure is the median of the platform's rounds, and its ratio to the baseline's.
"""

from __future__ import annotations

import asyncio
import io
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Figure, Report

TURNS = 100_000
DAYS = 30
TURNS_PER_CONVERSATION = 5
ROUNDS = 6  # a side, after a warm-up of each
BUDGET_S = 60  # writing the turns ~15 s, start-up ~10 s, 2 x 7 charts ~10 s
FIGURES = (
    "stats_chart_ms",
    "stats_chart_query_ms",
    "stats_chart_render_ms",
    "stats_chart_baseline_ms",
    "stats_chart_vs_baseline",
)
_BATCH = 5_000


def traffic(bot_id: int, now: datetime, *, turns: int = TURNS) -> tuple[list[dict[str, Any]], ...]:
    """Conversations, messages (a question and its answer a turn) and ratings of `turns` turns
    spread evenly over the DAYS before `now`, oldest first (ids from 1, as in a fresh database)."""
    rng = random.Random(17)
    span = timedelta(days=DAYS).total_seconds()
    conversations: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for n in range(turns):
        age = span * (1 - (n + 0.5) / turns)
        at = now - timedelta(seconds=age)
        if n % TURNS_PER_CONVERSATION == 0:
            person = rng.randrange(turns // 8)
            conversations.append(
                {
                    "id": len(conversations) + 1,
                    "bot_id": bot_id,
                    "deployment_id": None,
                    "channel": "web" if rng.random() < 0.6 else "telegram",
                    "key": f"k-{n}",
                    "user": f"user-{person}",
                    "sandbox": False,
                    "started_at": at,
                }
            )
        conversation = conversations[-1]
        day = DAYS - age / 86_400
        ab_test_id = variant = None
        version = 1 + min(2, int(day // 7))
        if day >= DAYS - 10:
            ab_test_id, variant = 1, "AB"[int(conversation["user"][5:]) % 2]
            version = 3 if variant == "A" else 4
        roll = rng.random()
        error = "timeout: model" if roll < 0.01 else "blocked: pii" if roll < 0.015 else None
        priced = error is None and rng.random() >= 0.05
        answer_id = len(messages) + 2
        question = {
            "id": answer_id - 1,
            "conversation_id": conversation["id"],
            "bot_id": bot_id,
            "role": "user",
            "text": "How do refunds work?",
            "version": None,
            "latency_ms": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "cost_usd": None,
            "error": error,
            "ab_test_id": None,
            "variant": None,
            "created_at": at,
        }
        answer = question | {
            "id": answer_id,
            "role": "assistant",
            "text": "Refunds take five days.",
            "version": version,
            "latency_ms": round(rng.lognormvariate(6.5 + 0.1 * (version == 4), 0.5), 1),
            "prompt_tokens": rng.randrange(200, 900),
            "completion_tokens": rng.randrange(20, 200),
            "cost_usd": rng.uniform(0.0001, 0.002) if priced else None,
            "ab_test_id": ab_test_id,
            "variant": variant,
        }
        messages += [question, answer]
        if rng.random() < 0.03:
            ratings.append(
                {
                    "message_id": answer_id,
                    "user": conversation["user"],
                    "bot_id": bot_id,
                    "rating": -1 if rng.random() < 0.4 else 1,
                    "channel": conversation["channel"],
                    "created_at": at,
                }
            )
    return conversations, messages, ratings


async def run(report: Report) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as name:
        await _measure(report, Path(name))


async def _measure(report: Report, tmp: Path) -> None:
    from main import build_services, load_settings

    data = tmp / "data"
    settings = load_settings(
        data_dir=data,
        database_url=f"sqlite+aiosqlite:///{data / 'studio.db'}",
        qdrant_url=":memory:",
    )
    report.begin("start-up")
    services = await build_services(settings)
    try:
        key = await services.ops.create_team("bench")
        caller = await services.ops.authenticate(key.key)
        await services.ops.import_bot(caller, {"name": "stats-bot"})
        async with services.db.read() as session:
            bot_id = (await services.ops.owned_bot(session, caller, "stats-bot")).id
        assert bot_id is not None
        report.begin(f"writing {TURNS:,} turns over {DAYS} days")
        await _write(services.db, traffic(bot_id, datetime.now(UTC)))
        report.begin("charts: the platform's and the baseline's, ABBA")
        parts: dict[str, list[float]] = {"query": [], "render": []}
        samples = await _rounds(
            platform=lambda: _platform(services, caller, parts),
            baseline=lambda: asyncio.to_thread(_baseline, data / "studio.db", bot_id),
        )
    finally:
        await services.close()
    platform, baseline = (statistics.median(samples[side]) for side in ("platform", "baseline"))
    query, render = (statistics.median(parts[part][1:]) for part in ("query", "render"))
    how = (
        f"median of {ROUNDS} rounds (ABBA after a warm-up); SQLite holding {TURNS:,} answered "
        f"turns over {DAYS} days (3 versions, then an A/B test of v3 and v4; web and telegram); "
        "platform: Operations.stats_series(BOT, 30d) + stats_chart (the PNG in a thread); "
        "baseline: sqlite3 GROUP BY day, version + a one-panel matplotlib bar chart"
    )
    report.add(
        Figure("stats_chart_ms", round(platform, 1), "ms", "", how),
        Figure("stats_chart_query_ms", round(query, 1), "ms", "", "its series; " + how),
        Figure("stats_chart_render_ms", round(render, 1), "ms", "", "its PNG; " + how),
        Figure("stats_chart_baseline_ms", round(baseline, 1), "ms", "", how),
        Figure("stats_chart_vs_baseline", round(platform / baseline, 2), "", "", how),
    )


async def _write(db: Any, rows: tuple[list[dict[str, Any]], ...]) -> None:
    from sqlalchemy import Connection, insert

    from storage.tables import Conversation, Feedback, Message

    tables = [t.__table__ for t in (Conversation, Message, Feedback)]  # type: ignore[union-attr]
    for table, values in zip(tables, rows, strict=True):
        for start in range(0, len(values), _BATCH):
            batch = values[start : start + _BATCH]

            def write(conn: Connection, table: Any = table, batch: Any = batch) -> None:
                conn.execute(insert(table), batch)

            await db.run_write(write)


async def _platform(services: Any, caller: Any, parts: dict[str, list[float]]) -> bytes:
    """The chart as `/stats stats-bot 30d` draws it; the time of each part kept in `parts`."""
    from studio.stats_chart import stats_chart

    started = time.perf_counter()
    series = await services.ops.stats_series(caller, "stats-bot", "30d")
    queried = time.perf_counter()
    png = await stats_chart(series)
    parts["query"].append((queried - started) * 1000)
    parts["render"].append((time.perf_counter() - queried) * 1000)
    return png


def _baseline(path: Path, bot_id: int) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as Picture

    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT strftime('%Y-%m-%d', m.created_at) AS day, m.version, count(*) "
            "FROM message m JOIN conversation c ON c.id = m.conversation_id "
            "WHERE m.bot_id = ? AND m.created_at >= ? AND m.role = 'assistant' "
            "AND NOT c.sandbox GROUP BY day, m.version ORDER BY day, m.version",
            (bot_id, f"{datetime.now(UTC) - timedelta(days=DAYS):%Y-%m-%d %H:%M:%S.%f}"),
        ).fetchall()
    days = sorted({day for day, _, _ in rows})
    picture = Picture(figsize=(8.0, 3.0), dpi=100)
    FigureCanvasAgg(picture)
    axes = picture.subplots()
    bottom = [0] * len(days)
    for version in sorted({v for _, v, _ in rows}):
        counts = dict.fromkeys(days, 0) | {day: n for day, v, n in rows if v == version}
        axes.bar(range(len(days)), list(counts.values()), bottom=bottom, label=f"v{version}")
        bottom = [b + c for b, c in zip(bottom, counts.values(), strict=True)]
    axes.legend()
    buffer = io.BytesIO()
    picture.savefig(buffer, format="png")
    return buffer.getvalue()


async def _rounds(
    *, platform: Callable[[], Awaitable[bytes]], baseline: Callable[[], Awaitable[bytes]]
) -> dict[str, list[float]]:
    """Milliseconds per chart of each side, ROUNDS each in ABBA order after a warm-up."""
    sides = {"platform": platform, "baseline": baseline}
    for draw in sides.values():
        await draw()
    samples: dict[str, list[float]] = {side: [] for side in sides}
    order = ["platform", "baseline", "baseline", "platform"]
    for n in range(ROUNDS * 2):
        side = order[n % 4]
        started = time.perf_counter()
        await sides[side]()
        samples[side].append((time.perf_counter() - started) * 1000)
    return samples
