"""The trend chart of an evaluation: each version's score (%) on a dataset, versions in number
order and the draft last; this run's versions drawn solid, earlier runs' hollow.

matplotlib's object API (a `Figure` on an Agg canvas, no pyplot: no global state, so renders in
threads do not meet), imported on first use as `studio.flow_picture` does; `trend_chart` renders
in a thread (CPU work).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass

DPI = 100
_WIDTH_IN, _HEIGHT_IN = 7.0, 3.6
_LABEL_CHARS = 40


@dataclass(frozen=True, slots=True)
class Point:
    """A version's score (0..1) on the dataset; `current`: from the run the chart is of."""

    label: str  # "v3", "draft"
    score: float
    current: bool


async def trend_chart(title: str, points: Sequence[Point]) -> bytes:
    """The chart as a PNG, drawn in a thread."""
    return await asyncio.to_thread(render, title, points)


def render(title: str, points: Sequence[Point]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(_WIDTH_IN, _HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    xs = list(range(len(points)))
    ys = [point.score * 100 for point in points]
    axes.plot(xs, ys, color="#2563eb", linewidth=1.6, zorder=1)
    for x, y, point in zip(xs, ys, points, strict=True):
        axes.scatter(
            [x], [y], s=46, zorder=2, color="#2563eb" if point.current else "white",
            edgecolors="#2563eb", linewidths=1.6,
        )  # fmt: skip
        axes.annotate(
            f"{y:.0f}%", (x, y), textcoords="offset points", xytext=(0, 8), ha="center",
            fontsize=8, parse_math=False,
        )  # fmt: skip
    axes.set_xticks(xs, [point.label for point in points])
    axes.set_xlim(-0.5, max(len(points) - 0.5, 0.5))
    axes.set_ylim(0, 110)
    axes.set_yticks([0, 25, 50, 75, 100])
    axes.set_ylabel("score %")
    axes.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    flat = " ".join(title.split())
    short = flat if len(flat) <= _LABEL_CHARS else flat[: _LABEL_CHARS - 1] + "…"
    axes.set_title(short, fontsize=11, weight="bold", loc="left")
    if any(not point.current for point in points):
        axes.text(
            1.0, 1.02, "hollow: an earlier run", transform=axes.transAxes, ha="right",
            fontsize=7.5, color="#6b7280", parse_math=False,
        )  # fmt: skip
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
