"""What changed between two specs, field by field; long text fields as unified diff lines."""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from typing import Any

from builders.spec import BotSpec

_TEXT_FIELDS = ("prompt", "greeting", "fallback", "description")


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    lines: tuple[str, ...] = ()


def diff_specs(before: BotSpec, after: BotSpec) -> list[FieldChange]:
    old = before.model_dump(mode="json")
    new = after.model_dump(mode="json")
    changes = []
    for name in BotSpec.model_fields:
        if old.get(name) == new.get(name):  # a field left out when unset (budget) is None
            continue
        lines: tuple[str, ...] = ()
        if name in _TEXT_FIELDS:
            diff = difflib.unified_diff(
                old[name].splitlines(), new[name].splitlines(), lineterm="", n=1
            )
            # Skip the two file headers by position: a removed "---" or "-- x" line of the
            # text itself also starts with "---" (and an added "++ x" with "+++").
            lines = tuple(itertools.islice(diff, 2, None))
        changes.append(
            FieldChange(field=name, before=old.get(name), after=new.get(name), lines=lines)
        )
    return changes
