"""The picture `/stats BOT` answers with: turns and conversations, latency p50/p95, errors and
cost, per hour (24h) or day (7d, 30d); turns stacked by version when more than one answered.
A period without traffic is a picture that says so, not an empty axis.

Drawn as `studio.eval_chart` draws (matplotlib's object API on an Agg canvas, imported on first
use), in a thread: `stats_chart` is what callers await.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.conversations import Series
from studio.operations import StatsSeries, percentile
from studio.presenters import period_words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
_WIDTH_IN, _HEIGHT_IN = 8.0, 6.4
_COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#6b7280")
_MOST_VERSIONS = len(_COLOURS) - 1  # the oldest beyond these are drawn together as "older"


@dataclass(frozen=True, slots=True)
class ChartData:
    """What the picture shows, one value per bucket (`labels`), oldest first."""

    title: str
    empty_note: str  # said instead of axes when nothing was answered
    labels: list[str]
    turns: dict[str, list[int]]  # by version label ("v3", "older"), newest version last
    conversations: list[int]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    errors: list[int]
    cost_usd: list[float]

    @property
    def empty(self) -> bool:
        return not any(sum(counts) for counts in self.turns.values())


def buckets(since: datetime, until: datetime, *, hourly: bool) -> list[str]:
    """Every bucket from `since` to `until`, as `storage.conversations.series` names them."""
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    fmt = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    at = since.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        at = at.replace(hour=0)
    names = []
    while at <= until:
        names.append(at.strftime(fmt))
        at += step
    return names


def chart_data(title: str, empty_note: str, series: Series, names: list[str]) -> ChartData:
    """Lay `series` out on the buckets `names`, zeros where nothing happened."""
    index = {name: i for i, name in enumerate(names)}
    versions = sorted({row.version or 0 for row in series.by_version})
    shown = versions[-_MOST_VERSIONS:]
    turns: dict[str, list[int]] = {}
    if len(versions) > len(shown):
        turns["older"] = [0] * len(names)
    for number in shown:
        turns[f"v{number}" if number else "no version"] = [0] * len(names)
    errors, cost = [0] * len(names), [0.0] * len(names)
    for row in series.by_version:
        i = index.get(row.bucket)
        if i is None:  # a turn stored as the period began, before the first bucket's start
            continue
        number = row.version or 0
        key = "older" if number not in shown else (f"v{number}" if number else "no version")
        turns[key][i] += row.turns
        errors[i] += row.errors
        cost[i] += row.cost_usd
    p50: list[float | None] = [None] * len(names)
    p95: list[float | None] = [None] * len(names)
    for name, values in series.latencies_ms.items():
        if name in index and values:
            ordered = sorted(values)
            p50[index[name]] = percentile(ordered, 0.5)
            p95[index[name]] = percentile(ordered, 0.95)
    conversations = [series.conversations.get(name, 0) for name in names]
    return ChartData(title, empty_note, names, turns, conversations, p50, p95, errors, cost)


async def stats_chart(stats: StatsSeries) -> bytes:
    """The picture of `stats` as a PNG, laid out and drawn in a thread."""
    return await asyncio.to_thread(_draw, stats)


def _draw(stats: StatsSeries) -> bytes:
    words = period_words(stats.period)
    names = buckets(stats.since, stats.until, hourly=stats.hourly)
    per = "hour" if stats.hourly else "day"
    title = f"{stats.bot}: last {words}, per {per} (UTC)"
    note = f"No conversations in the last {words}."
    return render(chart_data(title, note, stats.series, names))


def render(data: ChartData) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if data.empty:
        figure = Figure(figsize=(_WIDTH_IN, 2.0), dpi=DPI)
        FigureCanvasAgg(figure)
        figure.text(0.03, 0.75, data.title, fontsize=12, weight="bold", parse_math=False)
        figure.text(0.03, 0.4, data.empty_note, fontsize=11, color="#6b7280", parse_math=False)
        return _png(figure)
    figure = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    load, latency, trouble = figure.subplots(3, 1, sharex=True)
    xs = list(range(len(data.labels)))
    bottom = [0] * len(xs)
    colours = _COLOURS[: len(data.turns)][::-1]  # the newest version in the first colour
    for (label, counts), colour in zip(data.turns.items(), colours, strict=True):
        load.bar(xs, counts, bottom=bottom, color=colour, label=label, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    load.plot(xs, data.conversations, color="#111827", linewidth=1.4, label="conversations")
    load.set_ylabel("turns")
    load.legend(fontsize=7.5, loc="upper left", frameon=False, ncols=min(4, len(data.turns) + 1))
    load.set_title(data.title, fontsize=11, weight="bold", loc="left")
    latency.plot(xs, _gaps(data.p50_ms), color="#2563eb", marker=".", label="p50")
    latency.plot(xs, _gaps(data.p95_ms), color="#f59e0b", marker=".", label="p95")
    latency.set_ylabel("latency ms")
    latency.legend(fontsize=7.5, loc="upper left", frameon=False, ncols=2)
    trouble.bar(xs, data.errors, color="#ef4444", width=0.8, label="errors")
    trouble.set_ylabel("errors")
    spend = trouble.twinx()
    spend.plot(xs, data.cost_usd, color="#10b981", marker=".", label="cost")
    spend.set_ylabel("cost USD")
    spend.set_ylim(bottom=0)
    trouble.legend(
        [*trouble.get_legend_handles_labels()[0], *spend.get_legend_handles_labels()[0]],
        ["errors", "cost"],
        fontsize=7.5, loc="upper left", frameon=False, ncols=2,
    )  # fmt: skip
    for axes in (load, latency, trouble):
        axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.set_ylim(bottom=0)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    step = max(1, len(xs) // 8)
    trouble.set_xticks(xs[::step], [_short(label) for label in data.labels[::step]])
    trouble.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    return _png(figure)


def _gaps(values: list[float | None]) -> list[float]:
    """None (a bucket without answers) as a gap in the line."""
    return [float("nan") if value is None else value for value in values]


def _short(label: str) -> str:
    """A bucket's tick label: "13:00" of an hour, "12-04" of a day."""
    return label[11:] if " " in label else label[5:]


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
