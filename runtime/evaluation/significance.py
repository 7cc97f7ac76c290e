"""Whether two variants of a live A/B test differ by more than chance, in pure Python.

Rates (👍 of rated answers, errors of turns) are compared with a two-proportion z-test; online
scores and latencies with a Mann-Whitney U test (normal approximation, tie and continuity
corrections, as scipy's `mannwhitneyu(method="asymptotic")`). Both are two-sided. A test is only
run when the data can support it: every variant needs MIN_TURNS turns ("not enough traffic
yet"), a rate test MIN_RATED rated answers per variant and, in each cell, MIN_CELL expected
under the pooled rate (the usual condition: the normal approximation is poor below it), a score
test MIN_SCORED scores per variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runtime.ab import Variant

ALPHA = 0.05  # significant when p < ALPHA
MIN_TURNS = 30  # per variant, before anything is compared
MIN_RATED = 10  # rated answers per variant, for the 👍 rate
MIN_CELL = 5  # expected count of each cell of a rate test (up and down, say) per variant
MIN_SCORED = 10  # online-evaluation scores per variant

Metric = Literal["rating", "errors", "score", "latency"]


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Two-proportion z-test of b's rate against a's (z > 0: b's is higher)."""

    rate_a: float
    rate_b: float
    z: float
    p_value: float


@dataclass(frozen=True, slots=True)
class RankTest:
    """Mann-Whitney U test; `u` counts the pairs where b's value is larger (ties count half),
    so u > n_a * n_b / 2 (z > 0) means b's values tend to be larger."""

    u: float
    z: float
    p_value: float


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def two_proportions(hits_a: int, n_a: int, hits_b: int, n_b: int) -> ProportionTest:
    """`hits_a` of `n_a` against `hits_b` of `n_b`, with the pooled standard error."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both samples need at least one observation")
    rate_a, rate_b = hits_a / n_a, hits_b / n_b
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:  # all hits or none on both sides: nothing differs
        return ProportionTest(rate_a, rate_b, 0.0, 1.0)
    z = (rate_b - rate_a) / se
    return ProportionTest(rate_a, rate_b, z, _two_sided(z))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> RankTest:
    """Mann-Whitney U of `b` against `a` (ranks averaged over ties)."""
    n_a, n_b = len(a), len(b)
    if not n_a or not n_b:
        raise ValueError("both samples need at least one observation")
    pooled = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    n = n_a + n_b
    rank_sum_b = 0.0
    ties = 0.0  # sum of t^3 - t over groups of t equal values
    start = 0
    while start < n:
        end = start
        while end + 1 < n and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        size = end - start + 1
        rank = (start + end) / 2 + 1  # the average of ranks start+1 .. end+1
        rank_sum_b += rank * sum(side for _, side in pooled[start : end + 1])
        ties += size**3 - size
        start = end + 1
    u = rank_sum_b - n_b * (n_b + 1) / 2
    mean = n_a * n_b / 2
    variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:  # every value is the same
        return RankTest(u, 0.0, 1.0)
    shift = max(0.0, abs(u - mean) - 0.5)  # continuity correction
    z = math.copysign(shift, u - mean) / math.sqrt(variance)
    return RankTest(u, z, _two_sided(z))


@dataclass(frozen=True, slots=True)
class Sample:
    """One variant's data: turns answered (errors included), ratings, errors, the online
    scores of its answers and the latencies of the answered (not failed) turns."""

    turns: int
    ups: int
    rated: int
    errors: int
    scores: Sequence[float]
    latencies_ms: Sequence[float]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric of A against B: the values compared (a rate, a mean score, a median
    latency), the p-value when the data allowed a test, else `missing` (what it lacks), and the
    better variant when the difference is significant."""

    metric: Metric
    a: float | None
    b: float | None
    p_value: float | None = None
    better: Variant | None = None
    missing: str = ""

    @property
    def tested(self) -> bool:
        return self.p_value is not None


@dataclass(frozen=True, slots=True)
class AbVerdict:
    """Every comparison, and the primary one: the 👍 rate when it could be tested, else the
    online score when it could. A winner is the better variant of a significant primary."""

    enough_traffic: bool
    comparisons: tuple[Comparison, ...]
    primary: Comparison | None

    @property
    def winner(self) -> Variant | None:
        return self.primary.better if self.primary is not None else None


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _better(p_value: float, b_higher: bool, *, higher_is_better: bool) -> Variant | None:
    if p_value >= ALPHA:
        return None
    return "B" if b_higher == higher_is_better else "A"


def _rates(metric: Metric, hits: tuple[int, int], of: tuple[int, int], least: int) -> Comparison:
    """A two-proportion comparison of `hits` of `of` (A, B), if each side has `least`
    observations and every cell `MIN_CELL` expected under the pooled rate."""
    rate_a, rate_b = _rate(hits[0], of[0]), _rate(hits[1], of[1])
    higher_is_better = metric == "rating"
    if min(of) < least:
        what = "rated answers" if metric == "rating" else "turns"
        return Comparison(metric, rate_a, rate_b, missing=f"needs {least} {what} per variant")
    pooled = sum(hits) / sum(of)
    expected = [n * share for n in of for share in (pooled, 1 - pooled)]
    if min(expected) < MIN_CELL:
        yes, no = ("👍", "👎") if metric == "rating" else ("failed turns", "answered turns")
        needs = f"too few {yes} or {no} so far ({MIN_CELL} of each expected per variant)"
        return Comparison(metric, rate_a, rate_b, missing=needs)
    test = two_proportions(hits[0], of[0], hits[1], of[1])
    better = _better(test.p_value, test.z > 0, higher_is_better=higher_is_better)
    return Comparison(metric, test.rate_a, test.rate_b, test.p_value, better)


def _ranks(metric: Metric, a: Sequence[float], b: Sequence[float], least: int) -> Comparison:
    higher_is_better = metric == "score"
    centre = _mean if metric == "score" else _median
    value_a, value_b = centre(a), centre(b)
    if min(len(a), len(b)) < least:
        what = "scored answers" if metric == "score" else "answered turns"
        return Comparison(metric, value_a, value_b, missing=f"needs {least} {what} per variant")
    test = mann_whitney(a, b)
    better = _better(test.p_value, test.z > 0, higher_is_better=higher_is_better)
    return Comparison(metric, value_a, value_b, test.p_value, better)


def compare(a: Sample, b: Sample) -> AbVerdict:
    """What the data of variants A and B supports (CPU work: call it off the event loop for
    large samples)."""
    enough = min(a.turns, b.turns) >= MIN_TURNS
    if not enough:
        short = f"not enough traffic yet (each variant needs {MIN_TURNS} turns)"
        comparisons = (
            Comparison("rating", _rate(a.ups, a.rated), _rate(b.ups, b.rated), missing=short),
            Comparison("errors", _rate(a.errors, a.turns), _rate(b.errors, b.turns), missing=short),
            Comparison("score", _mean(a.scores), _mean(b.scores), missing=short),
            Comparison("latency", _median(a.latencies_ms), _median(b.latencies_ms), missing=short),
        )
        return AbVerdict(False, comparisons, None)
    rating = _rates("rating", (a.ups, b.ups), (a.rated, b.rated), MIN_RATED)
    errors = _rates("errors", (a.errors, b.errors), (a.turns, b.turns), MIN_TURNS)
    score = _ranks("score", a.scores, b.scores, MIN_SCORED)
    latency = _ranks("latency", a.latencies_ms, b.latencies_ms, MIN_TURNS)
    primary = rating if rating.tested else score if score.tested else None
    return AbVerdict(True, (rating, errors, score, latency), primary)


def _rate(hits: int, of: int) -> float | None:
    return hits / of if of else None
