"""Text rewriting shared by the platforms' renderers: code is never rewritten like prose, and a
model's Markdown is read by one library (markdown-it-py), never by hand, and written out by one
walk of its tokens (`MarkdownWriter`), each platform giving only its own marks."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token


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


class MarkdownWriter(ABC):
    """A model's Markdown (markdown-it tokens) as one platform's text: the walk every renderer
    shares, so that an answer reads alike wherever it goes. Blocks stand apart by a blank line
    (the items of a tight list by a line break), headings are bold, list items `•` or numbered
    lines (a nested list indented), a rule `———`, an image a link to it named by its
    description. Line breaks wait until more text follows, so no text starts or ends with blank
    lines and a closing mark follows its text directly.

    A subclass is a platform's way of writing: the opening and closing `marks` of `strong`, `em`
    and `s` (a heading is `strong`), those of inline code (`code`), and the hooks `escape`,
    `pre`, `link_open`/`link_close` and `quote_open`/`quote_close` (and `line_start` where a
    quote marks each line, `code_marks` where inline code takes no marks in some places)."""

    def __init__(self, marks: Mapping[str, tuple[str, str]], code: tuple[str, str]) -> None:
        self.marks = marks
        self.code = code
        self.out: list[str] = []
        self.breaks = 0  # line breaks owed before the next text
        self.lists: list[int | None] = []  # per open list: the next number, None for bullets
        self.quotes = 0  # blockquotes open

    def write(self, tokens: Sequence[Token]) -> str:
        """The text of a parsed Markdown document (a writer writes one)."""
        self.blocks(tokens)
        return "".join(self.out)

    # -- what a platform says --------------------------------------------------------------------

    @abstractmethod
    def escape(self, text: str) -> str:
        """`text` (prose or code) as the platform shows it as written."""

    @abstractmethod
    def pre(self, language: str) -> tuple[str, str]:
        """What opens and closes a block of code (`language`: its fence's, or "")."""

    @abstractmethod
    def link_open(self, url: str) -> None:
        """A link to `url` starts (its label follows)."""

    @abstractmethod
    def link_close(self) -> None:
        """The last link opened ends."""

    @abstractmethod
    def quote_open(self) -> None:
        """A blockquote starts (`quotes` counts it already)."""

    @abstractmethod
    def quote_close(self) -> None:
        """A blockquote ends (`quotes` no longer counts it)."""

    def line_start(self) -> str:
        """What starts each line written here (a quote's mark, on a platform that marks every
        quoted line)."""
        return ""

    def code_marks(self) -> tuple[str, str]:
        """The marks around inline code here."""
        return self.code

    # -- the walk --------------------------------------------------------------------------------

    def text(self, text: str) -> None:
        if text:
            start = self.line_start()
            escaped = self.escape(text)
            self.put(escaped.replace("\n", "\n" + start) if start else escaped)

    def put(self, piece: str) -> None:
        """Opening marks and text: the owed line breaks (and what starts a line) come first."""
        start = self.line_start()
        if self.breaks and self.out:
            self.out.append("\n" * self.breaks + start)
        elif start and not self.out:
            self.out.append(start)
        self.breaks = 0
        self.out.append(piece)

    def end(self, mark: str = "", *, breaks: int = 0) -> None:
        """A closing mark, then at least `breaks` line breaks owed."""
        if mark:
            self.out.append(mark)
        self.breaks = max(self.breaks, breaks)

    def blocks(self, tokens: Sequence[Token]) -> None:
        for token in tokens:
            kind = token.type
            if kind == "inline":
                self.inline(token.children or [])
            elif kind == "paragraph_close":
                self.end(breaks=1 if token.hidden else 2)  # hidden: an item of a tight list
            elif kind == "heading_open":
                self.put(self.marks["strong"][0])
            elif kind == "heading_close":
                self.end(self.marks["strong"][1], breaks=2)
            elif kind in ("bullet_list_open", "ordered_list_open"):
                start = token.attrGet("start")
                self.lists.append(None if kind == "bullet_list_open" else int(start or 1))
                self.breaks = max(self.breaks, 1)
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
                self.end(breaks=1 if self.lists else 2)
            elif kind == "list_item_open":
                self.item()
            elif kind == "blockquote_open":
                self.quotes += 1
                self.quote_open()
            elif kind == "blockquote_close":
                self.quotes -= 1
                self.quote_close()
            elif kind in ("fence", "code_block"):
                opening, closing = self.pre(
                    token.info.split(maxsplit=1)[0] if token.info.strip() else ""
                )
                self.put(opening)
                self.put(self.escape(token.content.rstrip("\n") or " "))
                self.end(closing, breaks=2)
            elif kind == "hr":
                self.text("———")
                self.end(breaks=2)

    def item(self) -> None:
        number = self.lists[-1]
        if number is not None:
            self.lists[-1] = number + 1
        self.breaks = max(self.breaks, 1)
        indent = "   " * (len(self.lists) - 1)
        self.text(f"{indent}• " if number is None else f"{indent}{number}. ")

    def inline(self, children: Sequence[Token]) -> None:
        for child in children:
            kind = child.type
            if kind in ("softbreak", "hardbreak"):
                self.text("\n")
            elif kind.endswith("_open") and kind[:-5] in self.marks:
                self.put(self.marks[kind[:-5]][0])
            elif kind.endswith("_close") and kind[:-6] in self.marks:
                self.end(self.marks[kind[:-6]][1])
            elif kind == "code_inline":
                opening, closing = self.code_marks()
                self.put(opening + self.escape(child.content))
                self.end(closing)
            elif kind == "link_open":
                self.link_open(str(child.attrGet("href") or ""))
            elif kind == "link_close":
                self.link_close()
            elif kind == "image":  # a link to it, named by its description
                self.link_open(str(child.attrGet("src") or ""))
                self.text(child.content or "image")
                self.link_close()
            else:
                self.text(child.content)
