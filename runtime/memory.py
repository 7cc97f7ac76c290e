"""Keep the service's long-lived objects out of the cyclic garbage collector's way.

A serving process holds ~650k objects from its imports (litellm's are most of them) for as long
as it lives. Every full collection walks all of them: ~0.4 s with the event loop stopped, and a
busy process ran ~25 of them in two minutes (measured in `bench telegram`). `gc.freeze()` moves the
objects tracked so far into a permanent generation that collections skip; objects made later are
collected as usual.

A collection of the youngest generation walks every young object alive at that moment, and in a
busy service those are the requests in flight. At Python's default (one every 700 net
allocations) 16 concurrent API turns ran one every 4 turns: ~0.1 ms of collector CPU per turn,
and more in the cache misses of walking them (`bench openai`: 0.2-0.3 ms of CPU per turn less at
one every 10,000). What is cyclic garbage waits longer (a turn leaves a few dozen such objects).
"""

from __future__ import annotations

import gc

_frozen: set[str] = set()
YOUNG_COLLECTION_EVERY = 10_000  # net allocations between two collections of the youngest


def freeze_long_lived(after: str) -> None:
    """Freeze what exists now, once per process for each `after` (what made the lasting objects:
    the service's start, litellm's import). Once, because what is frozen is never collected: a
    process that starts several services (the tests) must not keep each one's leftovers."""
    if after in _frozen:
        return
    _frozen.add(after)
    gc.collect(1)  # the young garbage of the moment is collected, not kept for good
    gc.freeze()


def collect_young_less_often() -> None:
    """Collect the youngest generation every `YOUNG_COLLECTION_EVERY` net allocations (a serving
    process); a higher threshold already set is kept."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_COLLECTION_EVERY), middle, old)
