"""Keep the service's long-lived objects out of the cyclic garbage collector's way.

A serving process holds ~650k objects from its imports (litellm's are most of them) for as long
as it lives. Every full collection walks all of them: ~0.4 s with the event loop stopped, and a
busy process ran ~25 of them in two minutes (measured in `bench telegram`). `gc.freeze()` moves the
objects tracked so far into a permanent generation that collections skip; objects made later are
collected as usual.
"""

from __future__ import annotations

import gc

_frozen: set[str] = set()


def freeze_long_lived(after: str) -> None:
    """Freeze what exists now, once per process for each `after` (what made the lasting objects:
    the service's start, litellm's import). Once, because what is frozen is never collected: a
    process that starts several services (the tests) must not keep each one's leftovers."""
    if after in _frozen:
        return
    _frozen.add(after)
    gc.collect(1)  # the young garbage of the moment is collected, not kept for good
    gc.freeze()
