"""Text rewriting shared by the platforms' renderers: code is never rewritten like prose, and a
model's Markdown is read by one library (markdown-it-py), never by hand."""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it import MarkdownIt


def markdown_parser(*, tables: bool = False) -> MarkdownIt:
    """A CommonMark parser for a model's answers: raw HTML in them is text, never markup;
    `~~struck~~` is read, bare `https://…` URLs become links, and tables where the
    output can show them (they cost parse time)."""
    parser = MarkdownIt("commonmark", {"html": False, "linkify": True}).enable(
        ["strikethrough", "linkify", "table"] if tables else ["strikethrough", "linkify"]
    )
    assert parser.linkify is not None  # linkify-it-py is a dependency
    parser.linkify.set({"fuzzy_link": False})  # `main.py` is a file name, not a Paraguayan site
    return parser


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
