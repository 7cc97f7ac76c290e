"""Live A/B tests at turn time: which variant an end user sticks to. A test sends `percent` of
an environment's end users to version B; a user's variant is a hash of the bot and the user, so
it is the same on every turn, in every process, and across restarts, with no row per user."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Variant = Literal["A", "B"]
_BUCKETS = 10_000


@dataclass(frozen=True, slots=True)
class AbPlan:
    """A running test of an environment: A is what it ran when the test started."""

    test_id: int
    version_a: int
    version_b: int
    percent: int  # of end users on B, 1..99


@dataclass(frozen=True, slots=True)
class Arm:
    """The variant one turn was answered by, as stored with the answer."""

    test_id: int
    variant: Variant


def variant_of(*, bot_id: int, channel: str, user: str, percent: int) -> Variant:
    """The variant `user` (on `channel`) sees of bot `bot_id` when `percent` go to B."""
    digest = hashlib.blake2b(f"{bot_id}\x00{channel}\x00{user}".encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") % _BUCKETS
    return "B" if bucket < percent * (_BUCKETS // 100) else "A"
