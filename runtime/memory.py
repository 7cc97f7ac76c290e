"""Keep the service's long-lived objects out of the cyclic garbage collector's way.

A serving process holds ~650k objects from its imports (litellm's are most of them) for as long
as it lives. Every full collection walks all of them: ~0.4 s with the event loop stopped, and a
busy process ran ~25 of them in two minutes (measured in `bench telegram`). `gc.freeze()` moves the
objects tracked so far into a permanent generation that collections skip; objects made later are
collected as usual.
"""

from __future__ import annotations

import gc


def freeze_long_lived() -> None:
    """Freeze what exists now; call it once a large set of lasting objects (imports) is made."""
    gc.collect(1)  # the young garbage of the moment is collected, not kept for good
    gc.freeze()
