"""`/stats BOT`'s picture: the buckets of a period, the series laid out on them (zeros where
nothing happened, the oldest versions together), and a PNG of it, or of a note when nothing
was answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.conversations import BucketStats, Series
from studio.operations import StatsSeries
from studio.stats_chart import buckets, chart_data, render, stats_chart
from tests.png import png_size

NOW = datetime(2026, 12, 4, 13, 40, tzinfo=UTC).replace(tzinfo=None)


def test_a_period_has_every_hour_or_day_in_it() -> None:
    hours = buckets(NOW - timedelta(hours=24), NOW, hourly=True)
    assert len(hours) == 25 and hours[0] == "2026-12-03 13:00" and hours[-1] == "2026-12-04 13:00"
    days = buckets(NOW - timedelta(days=7), NOW, hourly=False)
    assert len(days) == 8 and days[0] == "2026-11-27" and days[-1] == "2026-12-04"


def test_the_series_is_laid_out_on_the_buckets() -> None:
    names = buckets(NOW - timedelta(days=2), NOW, hourly=False)
    rows = [
        BucketStats("2026-12-01", 1, 5, 0, 1.0),  # before the first bucket: not drawn
        BucketStats("2026-12-02", 1, 2, 1, 0.25),
        BucketStats("2026-12-04", 2, 3, 0, 0.5),
        BucketStats("2026-12-04", None, 1, 0, 0.0),
    ]
    latencies = {"2026-12-02": [30.0, 10.0, 20.0], "2026-12-04": [5.0]}
    data = chart_data("t", "n", Series(rows, {"2026-12-02": 1, "2026-12-04": 2}, latencies), names)
    assert data.labels == ["2026-12-02", "2026-12-03", "2026-12-04"]
    assert data.turns == {"no version": [0, 0, 1], "v1": [2, 0, 0], "v2": [0, 0, 3]}
    assert data.conversations == [1, 0, 2]
    assert data.p50_ms == [20.0, None, 5.0] and data.p95_ms == [30.0, None, 5.0]
    assert data.errors == [1, 0, 0] and data.cost_usd == [0.25, 0.0, 0.5]
    assert not data.empty


def test_versions_beyond_five_are_drawn_together_as_older() -> None:
    names = ["2026-12-04"]
    rows = [BucketStats("2026-12-04", n, n, 0, 0.0) for n in range(1, 9)]
    data = chart_data("t", "n", Series(rows, {}, {}), names)
    assert list(data.turns) == ["older", "v4", "v5", "v6", "v7", "v8"]
    assert data.turns["older"] == [1 + 2 + 3]


def test_the_picture_is_a_png_and_an_idle_period_says_so() -> None:
    names = buckets(NOW - timedelta(days=7), NOW, hourly=False)
    rows = [BucketStats(name, 1 + i % 2, i + 1, i % 3, 0.01 * i) for i, name in enumerate(names)]
    busy = chart_data("faq-bot", "none", Series(rows, {}, {names[2]: [12.0, 40.0]}), names)
    assert png_size(render(busy)) == (800, 640)
    idle = chart_data("faq-bot", "No conversations in the last 7 days.", Series([], {}, {}), names)
    assert idle.empty and png_size(render(idle)) == (800, 200)


async def test_a_stats_series_is_drawn_with_its_period_in_words() -> None:
    stats = StatsSeries("faq-bot", "24h", NOW - timedelta(hours=24), NOW, True, Series([], {}, {}))
    assert png_size(await stats_chart(stats)) == (800, 200)
