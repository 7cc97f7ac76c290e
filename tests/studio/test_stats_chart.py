"""`/stats BOT`'s picture: the buckets of a period, the series laid out on them (zeros where
nothing happened, the oldest versions together), a panel by channel when more than one answered
and two by A/B variant when more than one did, and a PNG of it (taller with each panel), or of
a note when nothing was answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.conversations import Arm, BucketStats, Series
from studio.operations import StatsSeries
from studio.stats_chart import buckets, chart_data, render, stats_chart
from tests.png import png_size

NOW = datetime(2026, 12, 4, 13, 40, tzinfo=UTC).replace(tzinfo=None)
WIDTH, IDLE = 800, 200
BUSY = 640  # three panels; each more adds 200 pixels


def row(
    bucket: str,
    version: int | None,
    turns: int,
    *,
    errors: int = 0,
    cost: float | None = 0.0,
    channel: str = "web",
    arm: Arm | None = None,
) -> BucketStats:
    return BucketStats(bucket, version, channel, arm, turns, errors, cost)


def series(
    rows: list[BucketStats],
    conversations: dict[str, int] | None = None,
    latencies: dict[str, list[float]] | None = None,
    arm_latencies: dict[tuple[str, Arm], list[float]] | None = None,
    downs: dict[Arm, int] | None = None,
) -> Series:
    return Series(rows, conversations or {}, latencies or {}, arm_latencies or {}, downs or {})


def test_a_period_has_every_hour_or_day_in_it() -> None:
    hours = buckets(NOW - timedelta(hours=24), NOW, hourly=True)
    assert len(hours) == 25 and hours[0] == "2026-12-03 13:00" and hours[-1] == "2026-12-04 13:00"
    days = buckets(NOW - timedelta(days=7), NOW, hourly=False)
    assert len(days) == 8 and days[0] == "2026-11-27" and days[-1] == "2026-12-04"


def test_the_series_is_laid_out_on_the_buckets() -> None:
    names = buckets(NOW - timedelta(days=2), NOW, hourly=False)
    rows = [
        row("2026-12-01", 1, 5, cost=1.0),  # before the first bucket: not drawn
        row("2026-12-02", 1, 2, errors=1, cost=0.25),
        row("2026-12-04", 2, 3, cost=0.5),
        row("2026-12-04", None, 1, cost=None),
    ]
    latencies = {"2026-12-02": [30.0, 10.0, 20.0], "2026-12-04": [5.0]}
    data = chart_data("t", "n", series(rows, {"2026-12-02": 1, "2026-12-04": 2}, latencies), names)
    assert data.labels == ["2026-12-02", "2026-12-03", "2026-12-04"]
    assert data.turns == {"no version": [0, 0, 1], "v1": [2, 0, 0], "v2": [0, 0, 3]}
    assert data.conversations == [1, 0, 2]
    assert data.p50_ms == [20.0, None, 5.0] and data.p95_ms == [30.0, None, 5.0]
    assert data.errors == [1, 0, 0] and data.cost_usd == [0.25, 0.0, 0.5]
    assert data.channels == {} and data.variants == {}  # one channel, no test
    assert not data.empty


def test_a_bucket_whose_turns_all_had_an_unknown_price_has_an_unknown_cost() -> None:
    names = ["2026-12-03", "2026-12-04"]
    data = chart_data("t", "n", series([row("2026-12-04", 1, 2, cost=None)]), names)
    assert data.cost_usd == [0.0, None]  # nothing answered: nothing spent; unknown: a gap


def test_versions_beyond_five_are_drawn_together_as_older() -> None:
    names = ["2026-12-04"]
    data = chart_data("t", "n", series([row("2026-12-04", n, n) for n in range(1, 9)]), names)
    assert list(data.turns) == ["older", "v4", "v5", "v6", "v7", "v8"]
    assert data.turns["older"] == [1 + 2 + 3]


def test_turns_by_channel_when_more_than_one_busiest_first() -> None:
    names = ["2026-12-03", "2026-12-04"]
    rows = [
        row("2026-12-03", 1, 2, channel="telegram"),
        row("2026-12-04", 1, 1, channel="telegram"),
        row("2026-12-04", 1, 4, channel="web"),
        row("2026-12-04", 2, 1, channel="web"),
    ]
    data = chart_data("t", "n", series(rows), names)
    assert data.channels == {"web": [0, 5], "telegram": [2, 1]}
    many = [row("2026-12-04", 1, 10 - n, channel=f"c{n}") for n in range(6)]
    quietest = chart_data("t", "n", series(many), names).channels
    assert list(quietest) == ["c0", "c1", "c2", "c3", "other"]
    assert quietest["other"] == [0, 6 + 5]


def test_turns_latency_and_downs_per_a_b_variant() -> None:
    names = ["2026-12-03", "2026-12-04"]
    a, b = (4, "A"), (4, "B")
    rows = [
        row("2026-12-03", 3, 7),  # before the test
        row("2026-12-04", 3, 2, arm=a),
        row("2026-12-04", 3, 1, arm=a, channel="telegram"),
        row("2026-12-04", 4, 5, arm=b),
    ]
    arm_latencies = {("2026-12-04", a): [30.0, 10.0, 20.0], ("2026-12-04", b): [50.0]}
    data = chart_data("t", "n", series(rows, arm_latencies=arm_latencies, downs={b: 2}), names)
    assert data.variants == {"A · v3": [0, 3], "B · v4": [0, 5]}
    assert data.variant_p50_ms == {"A · v3": [None, 20.0], "B · v4": [None, 50.0]}
    assert data.variant_downs == {"A · v3": 0, "B · v4": 2}
    assert not data.variants_left_out
    alone = chart_data("t", "n", series([row("2026-12-04", 3, 2, arm=a)]), names)
    assert alone.variants == {}  # one variant: nothing to compare


def test_several_tests_are_named_and_the_oldest_left_out() -> None:
    names = ["2026-12-04"]
    arms = [(1, "A"), (1, "B"), (2, "A"), (2, "B"), (3, "A"), (3, "B")]
    rows = [row("2026-12-04", n + 1, 1, arm=arm) for n, arm in enumerate(arms)]
    data = chart_data("t", "n", series(rows), names)
    assert list(data.variants) == [
        "test 2 A · v3",
        "test 2 B · v4",
        "test 3 A · v5",
        "test 3 B · v6",
    ]
    assert data.variants_left_out


def test_the_picture_is_a_png_taller_with_each_panel_and_an_idle_period_says_so() -> None:
    names = buckets(NOW - timedelta(days=7), NOW, hourly=False)
    rows = [
        row(name, 1 + i % 2, i + 1, errors=i % 3, cost=0.01 * i) for i, name in enumerate(names)
    ]
    busy = chart_data("faq-bot", "none", series(rows, latencies={names[2]: [12.0, 40.0]}), names)
    assert png_size(render(busy)) == (WIDTH, BUSY)
    rows += [row(name, 1, 2, channel="telegram") for name in names[3:]]
    two_channels = chart_data("faq-bot", "none", series(rows), names)
    assert png_size(render(two_channels)) == (WIDTH, BUSY + 200)
    rows += [row(names[-1], 2, 3, arm=(1, "A")), row(names[-1], 3, 4, arm=(1, "B"))]
    arm_latencies = {(names[-1], (1, "A")): [20.0], (names[-1], (1, "B")): [25.0]}
    tested = chart_data("faq-bot", "none", series(rows, arm_latencies=arm_latencies), names)
    assert png_size(render(tested)) == (WIDTH, BUSY + 3 * 200)
    idle = chart_data("faq-bot", "No conversations in the last 7 days.", series([]), names)
    assert idle.empty and png_size(render(idle)) == (WIDTH, IDLE)


async def test_a_stats_series_is_drawn_with_its_period_in_words() -> None:
    stats = StatsSeries("faq-bot", "24h", NOW - timedelta(hours=24), NOW, True, series([]))
    assert png_size(await stats_chart(stats)) == (WIDTH, IDLE)
