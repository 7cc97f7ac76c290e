"""The picture `/stats BOT` answers with: turns and conversations, latency p50/p95, errors and
cost, per hour (24h) or day (7d, 30d); turns stacked by version when more than one answered.
When the period had more than one channel, a panel of turns by channel; when it had more than
one A/B variant, a panel of turns per variant (with each one's 👎 in the legend) and one of
their latency p50. A period without traffic is a picture that says so, not an empty axis.

Drawn as `studio.eval_chart` draws (matplotlib's object API on an Agg canvas, imported on first
use), in a thread: `stats_chart` is what callers await.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from storage.conversations import Arm, BucketStats, Series
from studio.operations import StatsSeries, percentile
from studio.presenters import period_words

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
_WIDTH_IN, _HEIGHT_IN = 8.0, 6.4  # the three panels every busy period has
_PANEL_IN = 2.0  # each panel more (channels, A/B variants)
_HEADROOM = 1.3  # a panel's height over its highest value: the legend's row
_COLOURS = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#6b7280")
_MOST_VERSIONS = len(_COLOURS) - 1  # the oldest beyond these are drawn together as "older"
_CHANNEL_COLOURS = ("#0891b2", "#db2777", "#65a30d", "#9333ea", "#94a3b8")
_MOST_CHANNELS = len(_CHANNEL_COLOURS) - 1  # the quietest beyond these together as "other"
_VARIANT_COLOURS = ("#4f46e5", "#ea580c", "#0d9488", "#be123c")
_MOST_VARIANTS = len(_VARIANT_COLOURS)  # the newest tests' variants; older ones are left out


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
    cost_usd: list[float | None]  # None: the bucket's turns all had an unknown price
    channels: dict[str, list[int]]  # turns by channel, busiest first; empty with one channel
    variants: dict[str, list[int]]  # turns by A/B variant ("A · v3"); empty with one or none
    variant_p50_ms: dict[str, list[float | None]]
    variant_downs: dict[str, int]  # 👎 of each variant's answers over the period
    variants_left_out: bool = False  # older tests' variants were not drawn

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
    # A turn stored as the period began, before the first bucket's start, is not drawn.
    rows = [row for row in series.answers if row.bucket in index]
    versions = sorted({row.version or 0 for row in series.answers})
    shown = versions[-_MOST_VERSIONS:]
    older = ["older"] if len(versions) > len(shown) else []
    turns = _stacks(
        index,
        ((row.bucket, _version_label(row.version, shown), row.turns) for row in rows),
        older + [_version_label(number, shown) for number in shown],
    )
    errors, cost = [0] * len(names), [0.0] * len(names)
    priced = [False] * len(names)
    for row in rows:
        i = index[row.bucket]
        errors[i] += row.errors
        if row.cost_usd is not None:
            cost[i] += row.cost_usd
            priced[i] = True
    answered = [sum(counts[i] for counts in turns.values()) for i in range(len(names))]
    p50, p95 = _percentiles(index, series.latencies_ms.items(), 0.5, 0.95)
    return ChartData(
        title,
        empty_note,
        names,
        turns,
        [series.conversations.get(name, 0) for name in names],
        p50,
        p95,
        errors,
        [
            None if n and not known else c
            for n, known, c in zip(answered, priced, cost, strict=True)
        ],
        _channels(index, rows),
        *_variants(index, series, rows),
    )


def _version_label(number: int | None, shown: list[int]) -> str:
    number = number or 0
    if number not in shown:
        return "older"
    return f"v{number}" if number else "no version"


def _stacks(
    index: dict[str, int], counts: Iterable[tuple[str, str, int]], order: list[str]
) -> dict[str, list[int]]:
    """(bucket, label, count) summed per label (in `order`) and bucket, zeros elsewhere."""
    stacks = {label: [0] * len(index) for label in order}
    for bucket, label, count in counts:
        stacks[label][index[bucket]] += count
    return stacks


def _percentiles(
    index: dict[str, int], latencies: Iterable[tuple[str, list[float]]], *fractions: float
) -> list[list[float | None]]:
    """Each of `fractions`' percentile of the latencies per bucket (None: no answer timed)."""
    lines: list[list[float | None]] = [[None] * len(index) for _ in fractions]
    for name, values in latencies:
        if name in index and values:
            ordered = sorted(values)
            for line, fraction in zip(lines, fractions, strict=True):
                line[index[name]] = percentile(ordered, fraction)
    return lines


def _channels(index: dict[str, int], rows: list[BucketStats]) -> dict[str, list[int]]:
    """Turns by channel, busiest first, the quietest beyond _MOST_CHANNELS as "other"; empty
    unless the period had more than one channel."""
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.channel] = totals.get(row.channel, 0) + row.turns
    if len(totals) < 2:
        return {}
    busiest = sorted(totals, key=lambda channel: (-totals[channel], channel))
    shown = set(busiest[:_MOST_CHANNELS])
    other = ["other"] if len(busiest) > len(shown) else []
    return _stacks(
        index,
        ((row.bucket, row.channel if row.channel in shown else "other", row.turns) for row in rows),
        busiest[:_MOST_CHANNELS] + other,
    )


def _variants(
    index: dict[str, int], series: Series, rows: list[BucketStats]
) -> tuple[dict[str, list[int]], dict[str, list[float | None]], dict[str, int], bool]:
    """Turns, latency p50 and 👎 per A/B variant (the newest _MOST_VARIANTS), labelled with
    their version ("A · v3"; "test 2 A · v3" when several tests ran); nothing unless the period
    had more than one variant."""
    versions: dict[Arm, int | None] = {}
    for row in rows:
        if row.arm is not None:
            versions[row.arm] = row.version
    if len(versions) < 2:
        return {}, {}, {}, False
    arms = sorted(versions)[-_MOST_VARIANTS:]
    several = len({test for test, _ in arms}) > 1
    labels = {arm: _arm_label(arm, versions[arm], several=several) for arm in arms}
    turns = _stacks(
        index,
        ((row.bucket, labels[row.arm], row.turns) for row in rows if row.arm in labels),
        list(labels.values()),
    )
    p50 = {
        label: _percentiles(
            index,
            ((b, values) for (b, arm), values in series.arm_latencies_ms.items() if arm == at),
            0.5,
        )[0]
        for at, label in labels.items()
    }
    downs = {label: series.rated_down.get(arm, 0) for arm, label in labels.items()}
    return turns, p50, downs, len(versions) > len(arms)


def _arm_label(arm: Arm, version: int | None, *, several: bool) -> str:
    """A variant's name: "A · v3", or "test 2 A · v3" when the period had several tests."""
    test, variant = arm
    label = f"test {test} {variant}" if several else variant
    return label if version is None else f"{label} · v{version}"


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
    extra = (1 if data.channels else 0) + (2 if data.variants else 0)
    height = _HEIGHT_IN + extra * _PANEL_IN
    figure = Figure(figsize=(_WIDTH_IN, height), dpi=DPI)
    FigureCanvasAgg(figure)
    panels = list(figure.subplots(3 + extra, 1, sharex=True))
    _margins(figure, height, len(panels))
    load, latency, trouble = panels[:3]
    xs = list(range(len(data.labels)))
    _stacked(load, xs, data.turns, _COLOURS[: len(data.turns)][::-1])  # newest: first colour
    load.plot(xs, data.conversations, color="#111827", linewidth=1.4, label="conversations")
    load.set_ylabel("turns")
    _legend(load, len(data.turns) + 1)
    load.set_title(data.title, fontsize=11, weight="bold", loc="left")
    latency.plot(xs, _gaps(data.p50_ms), color="#2563eb", marker=".", label="p50")
    latency.plot(xs, _gaps(data.p95_ms), color="#f59e0b", marker=".", label="p95")
    latency.set_ylabel("latency ms")
    _legend(latency, 2)
    trouble.bar(xs, data.errors, color="#ef4444", width=0.8, label="errors")
    trouble.set_ylabel("errors")
    spend = trouble.twinx()
    spend.plot(xs, _gaps(data.cost_usd), color="#10b981", marker=".", label="cost")
    spend.set_ylabel("cost USD")
    spend.spines["top"].set_visible(False)
    trouble.legend(
        [*trouble.get_legend_handles_labels()[0], *spend.get_legend_handles_labels()[0]],
        ["errors", "cost"],
        fontsize=7.5, loc="upper left", frameon=False, ncols=2,
    )  # fmt: skip
    rest = panels[3:]
    if data.channels:
        by_channel = rest.pop(0)
        _stacked(by_channel, xs, data.channels, _channel_colours(data.channels))
        by_channel.set_ylabel("turns")
        by_channel.set_title("by channel", fontsize=9, loc="left")
        _legend(by_channel, len(data.channels))
    if data.variants:
        _variant_panels(rest[0], rest[1], xs, data)
    for axes in panels:
        axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
    for axes in (*panels, spend):  # from 0, with room at the top for the legend
        axes.set_ylim(0, axes.get_ylim()[1] * _HEADROOM)
    step = max(1, len(xs) // 8)
    panels[-1].set_xticks(xs[::step], [_short(label) for label in data.labels[::step]])
    panels[-1].tick_params(axis="x", labelsize=8)
    return _png(figure)


def _margins(figure: Figure, height: float, panels: int) -> None:
    """Fixed margins (inches) around and between the panels: what `tight_layout` finds for
    this layout, without its measuring pass (a third of the drawing time)."""
    top, bottom, gap = 0.3, 0.35, 0.4
    panel = (height - top - bottom - (panels - 1) * gap) / panels
    figure.subplots_adjust(
        left=0.9 / _WIDTH_IN,
        right=1 - 0.7 / _WIDTH_IN,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / panel,
    )


def _variant_panels(turns: Axes, latency: Axes, xs: list[int], data: ChartData) -> None:
    """Each variant's turns side by side per bucket, and its latency p50."""
    width = 0.8 / len(data.variants)
    colours = _VARIANT_COLOURS[: len(data.variants)]
    for n, ((label, counts), colour) in enumerate(zip(data.variants.items(), colours, strict=True)):
        offset = (n - (len(data.variants) - 1) / 2) * width
        total = f"{sum(counts):,} turns, {data.variant_downs[label]:,} rated down"
        turns.bar(
            [x + offset for x in xs], counts, width=width, color=colour, label=f"{label}: {total}"
        )
        latency.plot(xs, _gaps(data.variant_p50_ms[label]), color=colour, marker=".", label=label)
    which = "newest A/B variants" if data.variants_left_out else "A/B variants"
    turns.set_title(f"{which}: turns", fontsize=9, loc="left")
    turns.set_ylabel("turns")
    _legend(turns, 2)
    latency.set_title(f"{which}: latency p50", fontsize=9, loc="left")
    latency.set_ylabel("latency ms")
    _legend(latency, len(data.variants))


def _stacked(
    axes: Axes, xs: list[int], stacks: dict[str, list[int]], colours: Iterable[str]
) -> None:
    bottom = [0] * len(xs)
    for (label, counts), colour in zip(stacks.items(), colours, strict=True):
        axes.bar(xs, counts, bottom=bottom, color=colour, label=label, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]


def _channel_colours(channels: dict[str, list[int]]) -> list[str]:
    """A colour per channel (at most _MOST_CHANNELS), the last one (grey) for "other"."""
    named = len(channels) - ("other" in channels)
    return [*_CHANNEL_COLOURS[:named], *_CHANNEL_COLOURS[-1:][: len(channels) - named]]


def _legend(axes: Axes, entries: int) -> None:
    axes.legend(fontsize=7.5, loc="upper left", frameon=False, ncols=min(6, entries))


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
