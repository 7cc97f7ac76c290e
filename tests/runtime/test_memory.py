"""Long-lived objects are frozen out of the collector's full passes, once per cause."""

from __future__ import annotations

import gc

from runtime.memory import freeze_long_lived


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
