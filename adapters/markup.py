"""Text rewriting shared by the platforms' renderers: code is never rewritten like prose."""

from __future__ import annotations

import re
from collections.abc import Callable


def around(
    pattern: re.Pattern[str],
    text: str,
    *,
    outside: Callable[[str], str],
    inside: Callable[[re.Match[str]], str],
) -> str:
    """`text` with every match of `pattern` rendered by `inside` and every stretch between
    matches by `outside` (e.g. code spans kept verbatim, the prose around them marked up)."""
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        pieces.append(outside(text[position : match.start()]))
        pieces.append(inside(match))
        position = match.end()
    pieces.append(outside(text[position:]))
    return "".join(pieces)
