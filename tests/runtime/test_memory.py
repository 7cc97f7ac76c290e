"""Long-lived objects are frozen out of the collector's full passes, once per cause."""

from __future__ import annotations

import gc

from runtime.memory import YOUNG_COLLECTION_EVERY, collect_young_less_often, freeze_long_lived


def _collected_normally(item: object) -> bool:
    """Still in the collector's generations (a frozen object is not)."""
    return any(seen is item for seen in gc.get_objects())


def test_what_exists_is_frozen_once_per_cause() -> None:
    lasting = ["made before the freeze"]
    freeze_long_lived(after="a test's imports")
    assert not _collected_normally(lasting)
    later = ["made after it"]
    freeze_long_lived(after="a test's imports")  # the same cause again: nothing is frozen
    assert _collected_normally(later)
    freeze_long_lived(after="another cause")  # a new cause freezes what was made since
    assert not _collected_normally(later)


def test_a_serving_process_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        collect_young_less_often()
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, 10, 10)
        gc.set_threshold(50_000, 5, 5)
        collect_young_less_often()  # a higher threshold set by the operator is kept
        assert gc.get_threshold() == (50_000, 5, 5)
    finally:
        gc.set_threshold(*before)
