"""The A/B tests' statistics against values worked out by hand (textbook formulas, normal table),
and the thresholds below which nothing is claimed."""

from __future__ import annotations

import pytest

from runtime.evaluation.significance import (
    MIN_RATED,
    MIN_SCORED,
    MIN_TURNS,
    Sample,
    compare,
    mann_whitney,
    two_proportions,
)


def test_two_proportions_with_round_numbers() -> None:
    """30/200 against 50/200: pooled 0.2, SE = sqrt(0.2 * 0.8 * (2/200)) = 0.04,
    z = 0.10 / 0.04 = 2.5, two-sided p = 2 * (1 - Phi(2.5)) = 2 * 0.00621 = 0.0124."""
    test = two_proportions(30, 200, 50, 200)
    assert (test.rate_a, test.rate_b) == (0.15, 0.25)
    assert test.z == pytest.approx(2.5)
    assert test.p_value == pytest.approx(0.01242, abs=5e-5)


def test_two_proportions_the_other_way() -> None:
    """60/100 against 45/100: pooled 0.525, SE = sqrt(0.525 * 0.475 * 0.02) = 0.070622,
    z = -0.15 / 0.070622 = -2.124, p = 2 * (1 - Phi(2.124)) = 0.0337."""
    test = two_proportions(60, 100, 45, 100)
    assert test.z == pytest.approx(-2.124, abs=1e-3)
    assert test.p_value == pytest.approx(0.0337, abs=1e-4)


def test_two_proportions_without_variation_differ_by_nothing() -> None:
    assert two_proportions(0, 40, 0, 50).p_value == 1.0
    assert two_proportions(40, 40, 50, 50).p_value == 1.0
    with pytest.raises(ValueError):
        two_proportions(0, 0, 1, 2)


def test_mann_whitney_without_ties() -> None:
    """b's five values all above a's: U = 25 of 25, mean 12.5, variance 25 * 11 / 12 = 22.917;
    with the continuity correction z = (12.5 - 0.5) / 4.7871 = 2.507, p = 0.0122 (scipy's
    asymptotic method gives the same)."""
    test = mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert test.u == 25
    assert test.z == pytest.approx(2.5067, abs=1e-4)
    assert test.p_value == pytest.approx(0.01219, abs=5e-5)
    flipped = mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert flipped.u == 0 and flipped.z == pytest.approx(-2.5067, abs=1e-4)
    assert flipped.p_value == pytest.approx(test.p_value)


def test_mann_whitney_with_ties() -> None:
    """a = 1 2 2 3, b = 2 3 3 4 5: ranks 1, 3 3 3, 6 6 6, 8, 9; R_b = 32, U = 32 - 15 = 17
    (pairs b > a, ties half: 2 + 3.5 + 3.5 + 4 + 4). Two groups of three ties: sum t^3 - t = 48,
    variance = 20 / 12 * (10 - 48 / 72) = 15.556; z = (7 - 0.5) / 3.944 = 1.648, p = 0.0993."""
    test = mann_whitney([1, 2, 2, 3], [2, 3, 3, 4, 5])
    assert test.u == 17
    assert test.z == pytest.approx(1.6481, abs=1e-3)
    assert test.p_value == pytest.approx(0.0993, abs=5e-4)


def test_mann_whitney_of_equal_values_differs_by_nothing() -> None:
    assert mann_whitney([0.5] * 40, [0.5] * 30).p_value == 1.0


def _sample(
    turns: int = 100,
    ups: int = 0,
    rated: int = 0,
    errors: int = 0,
    scores: tuple[float, ...] = (),
    latencies: tuple[float, ...] | None = None,
) -> Sample:
    answered = latencies if latencies is not None else tuple(range(100, 100 + turns))
    return Sample(turns, ups, rated, errors, scores, answered)


def test_below_thirty_turns_nothing_is_compared() -> None:
    a = _sample(turns=MIN_TURNS - 1, ups=0, rated=20)
    b = _sample(turns=500, ups=20, rated=20)
    verdict = compare(a, b)
    assert not verdict.enough_traffic and verdict.winner is None and verdict.primary is None
    assert all(c.p_value is None for c in verdict.comparisons)
    assert "not enough traffic yet" in verdict.comparisons[0].missing


def test_a_rate_needs_ten_rated_per_variant_and_five_expected_in_each_cell() -> None:
    few = compare(_sample(ups=9, rated=9), _sample(ups=0, rated=40))
    rating = few.comparisons[0]
    assert rating.metric == "rating" and rating.p_value is None
    assert rating.missing == f"needs {MIN_RATED} rated answers per variant"
    # 40 of 40 against 10 of 40: A's 👎 cell is empty, but 15 are expected under the pooled
    # rate (50 of 80), so the normal approximation holds and the difference is significant
    lopsided = compare(_sample(ups=40, rated=40), _sample(ups=10, rated=40)).comparisons[0]
    assert lopsided.p_value is not None and lopsided.p_value < 1e-6 and lopsided.better == "A"
    # 39 of 40 against 38 of 40: 1.5 👎 expected per variant, too few to test
    rare = compare(_sample(ups=39, rated=40), _sample(ups=38, rated=40)).comparisons[0]
    assert rare.p_value is None
    assert rare.missing == "too few 👍 or 👎 so far (5 of each expected per variant)"
    assert compare(_sample(), _sample()).primary is None  # no ratings, no scores: no winner


def test_a_significant_rate_names_the_better_variant() -> None:
    verdict = compare(_sample(ups=30, rated=200), _sample(ups=50, rated=200))
    rating = verdict.primary
    assert rating is not None and rating.metric == "rating"
    assert rating.p_value == pytest.approx(0.01242, abs=5e-5)
    assert rating.better == "B" and verdict.winner == "B"
    assert (rating.a, rating.b) == (0.15, 0.25)


def test_a_difference_that_may_be_chance_names_no_winner() -> None:
    verdict = compare(_sample(ups=14, rated=20), _sample(ups=12, rated=20))
    assert verdict.primary is not None and verdict.primary.p_value is not None
    assert verdict.primary.p_value > 0.05 and verdict.winner is None


def test_fewer_errors_fewer_milliseconds_and_higher_scores_are_better() -> None:
    a = _sample(
        turns=200,
        errors=20,
        scores=tuple([0.25] * 15 + [0.5] * 15),
        latencies=tuple(float(ms) for ms in range(300, 480)),
    )
    b = _sample(
        turns=200,
        errors=5,
        scores=tuple([0.75] * 15 + [1.0] * 15),
        latencies=tuple(float(ms) for ms in range(200, 396)),
    )
    rating, errors, score, latency = compare(a, b).comparisons
    assert rating.p_value is None  # nothing rated: the online score decides
    assert errors.better == "B" and errors.a == 0.1 and errors.b == 0.025
    assert score.better == "B" and score.a == pytest.approx(0.375)
    assert latency.better == "B" and latency.a == 389.5 and latency.b == 297.5
    verdict = compare(a, b)
    assert verdict.primary == score and verdict.winner == "B"
    reverse = compare(b, a)
    assert reverse.winner == "A" and reverse.comparisons[3].better == "A"


def test_scores_need_ten_per_variant() -> None:
    verdict = compare(
        _sample(scores=(0.0,) * (MIN_SCORED - 1)), _sample(scores=(1.0,) * MIN_SCORED)
    )
    score = verdict.comparisons[2]
    assert score.p_value is None and score.missing == "needs 10 scored answers per variant"
    assert verdict.primary is None
