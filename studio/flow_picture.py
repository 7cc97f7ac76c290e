"""A bot's flow as a PNG: one box per step (its id and kind) in rows by distance from the entry,
arrows for each step's `next` and each router branch, labelled with the branch's condition.

matplotlib's object API (a `Figure` on an Agg canvas, no pyplot: no global state, so renders in
threads do not meet), imported on first use: it costs about half a second, which the service's
start-up does not pay. Rendering is CPU work: `flow_picture` runs it in a thread.
"""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builders.flow import Outline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import FancyBboxPatch

MAX_WIDTH_IN = 16.0  # at DPI: at most 1600 px wide
MAX_HEIGHT_IN = 20.0
DPI = 100
_BOX_W, _BOX_H = 2.1, 0.8  # a box, in inches before scaling
_COL_W, _ROW_H = 2.7, 1.55  # the space each box takes
_LABEL_CHARS = 24
_COLOURS = {
    "llm": "#dbeafe",
    "retrieve": "#e0f2fe",
    "router": "#fef3c7",
    "template": "#dcfce7",
    "extract": "#f3e8ff",
    "bot": "#ffe4e6",
}


@dataclass(frozen=True, slots=True)
class FlowPicture:
    png: bytes
    boxes: int  # one per step drawn
    arrows: int
    width: int  # pixels
    height: int


async def flow_picture(view: Outline) -> FlowPicture:
    """The picture of `view`, drawn in a thread."""
    return await asyncio.to_thread(render, view)


def _short(text: str, limit: int = _LABEL_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _positions(view: Outline) -> tuple[dict[str, tuple[float, float]], int, int]:
    """Each step's centre (x right, y up, in unscaled inches), and the grid's columns and rows.
    Steps no edge reaches (none, in a valid flow) go in a last row."""
    rows: dict[int, list[str]] = defaultdict(list)
    last = max(view.depth.values(), default=0) + 1
    for step in view.steps:
        rows[view.depth.get(step.id, last)].append(step.id)
    columns = max(len(ids) for ids in rows.values())
    levels = sorted(rows)
    centres: dict[str, tuple[float, float]] = {}
    for row, level in enumerate(levels):
        ids = rows[level]
        offset = (columns - len(ids)) * _COL_W / 2
        for column, step_id in enumerate(ids):
            x = offset + (column + 0.5) * _COL_W
            y = (len(levels) - row - 0.5) * _ROW_H
            centres[step_id] = (x, y)
    return centres, columns, len(levels)


def render(view: Outline) -> FlowPicture:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    centres, columns, rows = _positions(view)
    width, height = columns * _COL_W, rows * _ROW_H + 0.9  # room for the title, a curve below
    scale = min(1.0, MAX_WIDTH_IN / width, MAX_HEIGHT_IN / height)
    figure = Figure(figsize=(max(width * scale, 3.0), height * scale), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(min(0.0, width / 2 - 1.5 / scale), max(width, width / 2 + 1.5 / scale))
    axes.set_ylim(-0.4, height - 0.4)
    axes.axis("off")
    axes.text(
        0.1, height - 0.65, f"{view.bot} flow", fontsize=11 * scale, weight="bold", va="center",
        parse_math=False,
    )  # fmt: skip
    boxes = {
        step.id: _box(axes, step.id, step.kind, centres[step.id], scale, step.id == view.entry)
        for step in view.steps
    }
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for edge in view.edges:
        pairs[edge.source, edge.target] += 1
    drawn: dict[tuple[str, str], int] = defaultdict(int)
    for edge in view.edges:
        pair = (edge.source, edge.target)
        spread = drawn[pair] - (pairs[pair] - 1) / 2  # parallel arrows fan out
        drawn[pair] += 1
        _arrow(
            axes,
            (boxes[edge.source], boxes[edge.target]),
            (centres[edge.source], centres[edge.target]),
            edge.label,
            scale,
            spread,
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    pixels_w, pixels_h = (round(v * DPI) for v in figure.get_size_inches())
    return FlowPicture(buffer.getvalue(), len(boxes), len(view.edges), pixels_w, pixels_h)


def _box(
    axes: Axes, step_id: str, kind: str, centre: tuple[float, float], scale: float, entry: bool
) -> FancyBboxPatch:
    from matplotlib.patches import FancyBboxPatch

    x, y = centre
    box = FancyBboxPatch(
        (x - _BOX_W / 2, y - _BOX_H / 2),
        _BOX_W,
        _BOX_H,
        boxstyle="round,pad=0.02,rounding_size=0.12",
        facecolor=_COLOURS.get(kind, "#f3f4f6"),
        edgecolor="#111827" if entry else "#6b7280",
        linewidth=(2.2 if entry else 1.0) * scale,
        zorder=2,
    )
    axes.add_patch(box)
    axes.text(
        x, y + 0.12, _short(step_id, 20), ha="center", va="center", fontsize=10 * scale,
        weight="bold", zorder=3, parse_math=False,
    )  # fmt: skip
    axes.text(
        x, y - 0.18, kind, ha="center", va="center", fontsize=8 * scale, color="#374151",
        zorder=3, parse_math=False,
    )  # fmt: skip
    return box


def _arrow(
    axes: Axes,
    ends: tuple[FancyBboxPatch, FancyBboxPatch],
    centres: tuple[tuple[float, float], tuple[float, float]],
    label: str,
    scale: float,
    spread: float,
) -> None:
    """A straight arrow down to a deeper row, a curved one back up or along a row; `spread`
    bends arrows between the same two steps apart."""
    from matplotlib.patches import FancyArrowPatch

    source, target = ends
    start, end = centres
    back = end[1] >= start[1]
    bend = (0.45 if back else 0.0) + 0.6 * spread
    arrow = FancyArrowPatch(
        start,
        end,
        patchA=source,
        patchB=target,
        arrowstyle="-|>",
        mutation_scale=14 * scale,
        connectionstyle=f"arc3,rad={bend}",
        color="#b45309" if label and label != "default" else "#4b5563",
        linewidth=1.2 * scale,
        zorder=1,
    )
    axes.add_patch(arrow)
    if not label:
        return
    middle_x, middle_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
    # the middle of an arc3 curve lies off the straight line, by `bend` of its length
    middle_x += bend * (end[1] - start[1]) / 2
    middle_y -= bend * (end[0] - start[0]) / 2
    axes.text(
        middle_x, middle_y, _short(label), ha="center", va="center", fontsize=7.5 * scale,
        color="#111827", zorder=4, parse_math=False,
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
    )  # fmt: skip
