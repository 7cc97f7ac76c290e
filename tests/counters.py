"""Reading the service's Prometheus counters in tests. They are process-global (every test in
the run adds to them), so a test compares a snapshot taken before what it does with one after."""

from __future__ import annotations

from itertools import product

from prometheus_client import REGISTRY


def count(name: str, **labels: str) -> float:
    """The value of counter `name` with exactly `labels`; 0 before its first increment."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts(name: str, **labels: tuple[str, ...]) -> dict[str, float]:
    """`count` for every combination of the labels' values, keyed by the values joined with
    "/" in the order given: `counts(N, kind=("a", "b"), outcome=("sent",))` has "a/sent" and
    "b/sent"."""
    names = list(labels)
    return {
        "/".join(values): count(name, **dict(zip(names, values, strict=True)))
        for values in product(*labels.values())
    }


def moved(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What moved between two snapshots of `counts` (what did not is left out)."""
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}
