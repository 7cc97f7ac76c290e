"""Turn a knowledge source (txt, md, html, pdf, docx) into a Document of sections.

Parsing is synchronous CPU work: async callers run `extract` in a thread. Every refusal is a
`KnowledgeInputError` whose message is one line for the user, never a parser's traceback.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from runtime.net import format_size as format_size  # re-exported: sizes in messages
from runtime.net import too_big

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 20 * 1024 * 1024
# A DOCX is a zip that python-docx unpacks whole into memory: a small file may unpack to gigabytes.
MAX_DOCX_UNPACKED_BYTES = 5 * MAX_SOURCE_BYTES

_EXTENSION_KINDS = {
    "txt": "text",
    "text": "text",
    "md": "markdown",
    "markdown": "markdown",
    "html": "html",
    "htm": "html",
    "pdf": "pdf",
    "docx": "docx",
}
_CONTENT_TYPE_KINDS = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
_WORD = re.compile(r"\w")  # text without a letter or digit ("...", "----") holds nothing to find
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


class KnowledgeInputError(Exception):
    """A source that cannot become knowledge; `str(exc)` is one line to show the user."""


@dataclass(frozen=True, slots=True)
class Section:
    """Text that belongs together: one PDF page, or the body under one heading."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """The text of one source; `kind` is text, markdown, html, pdf or docx."""

    name: str
    kind: str
    sections: tuple[Section, ...]


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    text: str


def kind_from_name(name: str) -> str | None:
    """The kind named by the extension of the last path segment of `name`, if any."""
    stem, dot, extension = name.rpartition("/")[2].rpartition(".")
    return _EXTENSION_KINDS.get(extension.lower()) if dot and stem else None


def kind_from_content_type(content_type: str | None) -> str | None:
    """The kind named by a MIME type (parameters such as charset ignored), if any."""
    if not content_type:
        return None
    return _CONTENT_TYPE_KINDS.get(content_type.partition(";")[0].strip().lower())


def extract(
    *,
    name: str,
    content: bytes,
    content_type: str | None = None,
    max_bytes: int = MAX_SOURCE_BYTES,
    kind: str | None = None,
) -> Document:
    """Parse `content` into sections.

    The kind is `kind` when given (the URL fetcher trusts Content-Type first), else the file
    extension, else `content_type`; a charset in `content_type` is tried after UTF-8.
    """
    if len(content) > max_bytes:
        raise KnowledgeInputError(too_big(name, len(content), max_bytes))
    kind = kind or kind_from_name(name) or kind_from_content_type(content_type) or ""
    parse = _PARSERS.get(kind)
    if parse is None:
        raise KnowledgeInputError(f"{name}: unsupported file type (use txt, md, html, pdf or docx)")
    return _document(name, kind, parse(name, content, content_type))


def from_text(*, name: str, text: str) -> Document:
    """A source typed in chat: one plain-text section."""
    return _document(name, "text", _plain_sections(_newlines(text)))


def _document(name: str, kind: str, sections: list[Section]) -> Document:
    if not any(_WORD.search(section.text) for section in sections):
        hint = " (it may be scanned images: upload a PDF with selectable text)"
        raise KnowledgeInputError(f"{name} has no text" + (hint if kind == "pdf" else ""))
    return Document(name=name, kind=kind, sections=tuple(sections))


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(name: str, content: bytes, content_type: str | None) -> str:
    """UTF-8 (with or without BOM), then a declared charset, then Windows-1252."""
    if b"\x00" in content:
        raise KnowledgeInputError(f"{name} looks like a binary file, not text")
    declared = _CHARSET.search(content_type or "")
    encodings = ["utf-8-sig", *([declared.group(1)] if declared else []), "cp1252"]
    for encoding in encodings:
        try:
            return _newlines(content.decode(encoding))
        except (UnicodeDecodeError, LookupError):
            continue
    raise KnowledgeInputError(f"{name} is not UTF-8 or Windows-1252 text")


def _sections(
    blocks: Iterable[_Heading | str], *, joiner: str, root: str | None = None
) -> list[Section]:
    """Group body text under the path of the headings above it ("Parent > Child").

    `root` is a level-0 heading above all others (an HTML page's title when it has no h1).
    """
    path = [_Heading(0, root)] if root else []
    body: list[str] = []
    sections: list[Section] = []
    for block in blocks:
        if isinstance(block, str):
            body.append(block)
            continue
        sections += _section(body, path, joiner)
        body = []
        while path and path[-1].level >= block.level:
            path.pop()
        path.append(block)
    return sections + _section(body, path, joiner)


def _section(body: list[str], path: list[_Heading], joiner: str) -> list[Section]:
    text = joiner.join(body).strip()
    heading = " > ".join(h.text for h in path if h.text) or None
    return [Section(text=text, heading=heading)] if text else []


def _plain_sections(text: str) -> list[Section]:
    return [Section(text=text.strip())] if text.strip() else []


def _text(name: str, content: bytes, content_type: str | None) -> list[Section]:
    return _sections(_plain_blocks(_decode(name, content, content_type)), joiner="\n")


_UNDERLINE = re.compile(r" {0,3}(=+|-+)[ \t]*")
_NUMBERED_TITLE = re.compile(r"(\d{1,3}(?:\.\d{1,3})*)\.?[ \t]+(\S.*?)\.?")
_SMALL_WORDS_TEXT = "a an and as at by for from in of on or the to with"
_SMALL_WORDS = frozenset(_SMALL_WORDS_TEXT.split())


def _plain_blocks(text: str) -> list[_Heading | str]:
    """Lines of a plain-text file, and the headings its layout shows: a line underlined with
    `===` or `---`, or a title standing alone between blank lines ("5. Conveying Modified
    Source Versions.", "TERMS AND CONDITIONS"). Guessed from layout, a heading with no text of
    its own before the next one stays a line of the text too, so nothing is lost where the
    guess is wrong (the steps of a list, a one-line note)."""
    lines = text.split("\n")
    blocks: list[_Heading | str] = []
    skip = False
    for index, line in enumerate(lines):
        if skip:
            skip = False
            continue
        before = lines[index - 1] if index else ""
        after = lines[index + 1] if index + 1 < len(lines) else ""
        title = " ".join(line.split())
        if title and _UNDERLINE.fullmatch(after) and len(after.strip()) >= 3:
            skip = True
            blocks.append(_Heading(1 if after.strip()[0] == "=" else 2, title))
            continue
        alone = title and not before.strip() and not after.strip()
        level = _title_level(title) if alone else None
        blocks.append(line if level is None else _Heading(level, title.rstrip(".")))
    return _with_bare_headings_as_text(blocks)


def _with_bare_headings_as_text(blocks: list[_Heading | str]) -> list[_Heading | str]:
    kept: list[_Heading | str] = []
    for index, block in enumerate(blocks):
        kept.append(block)
        if isinstance(block, _Heading):
            following = (b for b in blocks[index + 1 :] if isinstance(b, _Heading) or b.strip())
            if isinstance(next(following, None), _Heading | None):
                kept.append(block.text)
    return kept


def _title_level(line: str) -> int | None:
    """A lone line's heading level, or None for text: a numbered title nests by its number's
    depth under underlined headings (levels 1 and 2); another title is at the top."""
    if len(line) > 80 or line[-1] in ",;:!?":
        return None
    numbered = _NUMBERED_TITLE.fullmatch(line)
    if numbered:
        words = numbered.group(2).split()
        depth = numbered.group(1).count(".") + 1
        return 2 + depth if len(words) <= 10 and words[0][0].isupper() else None
    words = line.split()
    if line.endswith(".") or len(words) > 8 or not any(c.isalpha() for c in line):
        return None
    titled = all(w[0].isupper() or w.lower() in _SMALL_WORDS for w in words if w[0].isalpha())
    return 1 if titled else None


_ATX_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _markdown(name: str, content: bytes, content_type: str | None) -> list[Section]:
    return _sections(_markdown_blocks(_decode(name, content, content_type)), joiner="\n")


def _markdown_blocks(text: str) -> Iterator[_Heading | str]:
    """Lines of body text and ATX headings; a `#` inside a fenced code block is not a heading."""
    fence: str | None = None
    for line in text.split("\n"):
        marker = _FENCE.match(line)
        if marker and fence is None:
            fence = marker.group(1)
        elif marker and fence is not None and marker.group(1).startswith(fence):
            fence = None
        heading = None if fence or marker else _ATX_HEADING.fullmatch(line)
        if heading:
            yield _Heading(len(heading.group(1)), " ".join((heading.group(2) or "").split()))
        else:
            yield line


class _HtmlText(HTMLParser):
    """Headings and paragraphs of a page, without scripts, styles, navigation or head."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "nav", "head", "svg"})
    _BLOCK = frozenset(
        [
            "address",
            "article",
            "aside",
            "blockquote",
            "dd",
            "details",
            "div",
            "dl",
            "dt",
            "fieldset",
            "figcaption",
            "figure",
            "footer",
            "form",
            "header",
            "hr",
            "li",
            "main",
            "ol",
            "p",
            "pre",
            "section",
            "summary",
            "table",
            "tbody",
            "thead",
            "tfoot",
            "tr",
            "ul",
        ]
    )
    _HEAD = frozenset({"title", "meta", "link", "base", "script", "style", "noscript", "template"})
    _HEADINGS = {f"h{level}": level for level in range(1, 7)}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[_Heading | str] = []
        self.title = ""
        self.has_h1 = False
        self._skipping: list[str] = []
        self._text: list[str] = []
        self._heading: int | None = None
        self._in_title = False
        self._cells = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping == ["head"] and tag not in self._HEAD:  # </head> is optional
            self._skipping.clear()
        if tag == "title" and not self.title:
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping.append(tag)
        elif tag in self._HEADINGS:
            self._break()
            self._heading = self._HEADINGS[tag]
            self.has_h1 = self.has_h1 or tag == "h1"
        elif tag in ("td", "th"):
            self._text.append(" | " if self._cells else " ")
            self._cells += 1
        elif tag == "br":
            self._text.append("\n")
        elif tag in self._BLOCK:
            self._break()
            self._cells = 0

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._skipping:
            while self._skipping.pop() != tag:
                pass
        elif tag in self._HEADINGS and self._heading is not None:
            self.blocks.append(_Heading(self._heading, _collapse(self._text)))
            self._heading, self._text = None, []
        elif tag in self._BLOCK:
            self._break()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self._text.append(data)

    def finish(self) -> list[_Heading | str]:
        """Flush what is pending and return the blocks."""
        self.close()
        self._break()
        return self.blocks

    def _break(self) -> None:
        if self._heading is not None:  # a block inside a heading stays part of its text
            return
        if paragraph := _collapse(self._text):
            self.blocks.append(paragraph)
        self._text = []


def _collapse(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def _html(name: str, content: bytes, content_type: str | None) -> list[Section]:
    parser = _HtmlText()
    try:
        parser.feed(_decode(name, content, content_type))
        blocks = parser.finish()
    except AssertionError as exc:  # html.parser's way of giving up on broken markup
        raise KnowledgeInputError(f"{name} could not be read as HTML") from exc
    title = None if parser.has_h1 else " ".join(parser.title.split())
    return _sections(blocks, joiner="\n\n", root=title)


def _pdf(name: str, content: bytes, _content_type: str | None) -> list[Section]:
    from pypdf import PdfReader  # imported on use: it costs every importer 0.2 s

    try:
        reader = PdfReader(io.BytesIO(content))
        locked = reader.is_encrypted and not reader.decrypt("")
        pages = [] if locked else [page.extract_text() for page in reader.pages]
    except Exception as exc:  # pypdf raises errors of many types on damaged files
        logger.info("unreadable PDF %s", name, exc_info=True)
        raise KnowledgeInputError(f"{name} could not be read as a PDF (it looks damaged)") from exc
    if locked:
        raise KnowledgeInputError(f"{name} is encrypted: upload an unprotected copy")
    return [
        Section(text=text.strip(), page=number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]


def _docx(name: str, content: bytes, _content_type: str | None) -> list[Section]:
    import docx  # imported on use: it costs every importer 0.2 s

    _check_unpacked_size(name, content)
    try:
        blocks = list(_docx_blocks(docx.Document(io.BytesIO(content))))
    except Exception as exc:  # python-docx raises zip, XML and key errors on damaged files
        logger.info("unreadable DOCX %s", name, exc_info=True)
        raise KnowledgeInputError(
            f"{name} could not be read as a Word document (it looks damaged)"
        ) from exc
    return _sections(blocks, joiner="\n\n")


def _check_unpacked_size(name: str, content: bytes) -> None:
    """Refuse a DOCX whose parts unpack to more than MAX_DOCX_UNPACKED_BYTES. The sizes declared
    in the zip's directory are a bound: zipfile never unpacks a member past its declared size."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise KnowledgeInputError(
            f"{name} could not be read as a Word document (it looks damaged)"
        ) from exc
    if unpacked > MAX_DOCX_UNPACKED_BYTES:
        raise KnowledgeInputError(
            f"{name} unpacks to {format_size(unpacked)}, over the limit of "
            f"{format_size(MAX_DOCX_UNPACKED_BYTES)} for a Word document"
        )


def _docx_blocks(document: DocxDocument) -> Iterator[_Heading | str]:
    """Paragraphs and table rows in document order; Title and Heading N styles are headings."""
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if not isinstance(item, Paragraph):
            yield from _table_rows(item)
            continue
        level = _heading_level(item.style.name if item.style else None)
        if level is None:
            yield item.text
        else:
            yield _Heading(level, " ".join(item.text.split()))


def _heading_level(style: str | None) -> int | None:
    if style == "Title":
        return 0
    match = re.fullmatch(r"Heading ([1-9])", style or "")
    return int(match.group(1)) if match else None


def _table_rows(table: Table) -> Iterator[str]:
    """Each row as "cell | cell"; a merged cell appears once, not once per grid column."""
    for row in table.rows:
        cells = dict.fromkeys(row.cells)  # a horizontally merged cell repeats the same object
        yield " | ".join(text for cell in cells if (text := " ".join(cell.text.split())))


_PARSERS: dict[str, Callable[[str, bytes, str | None], list[Section]]] = {
    "text": _text,
    "markdown": _markdown,
    "html": _html,
    "pdf": _pdf,
    "docx": _docx,
}
