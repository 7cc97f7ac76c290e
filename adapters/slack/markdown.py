"""A model's Markdown as Slack mrkdwn, so a bot's answer in Slack reads as it was meant.

Models write `**bold**`, `*italic*`, `~~struck~~`, `[label](url)`, `# headings` and `- lists`;
Slack shows those marks as they are. Here they become `*bold*`, `_italic_`, `~struck~`,
`<url|label>`, a bold line and `•` items. Code (fenced blocks and `inline`) is left as written,
and `&`, `<`, `>` are escaped everywhere, as Slack requires: the result is ready for a mrkdwn
text object.
"""

from __future__ import annotations

import re

from adapters.markup import around


def escape(text: str) -> str:
    """`&`, `<` and `>` as the entities Slack requires in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Marks that must survive the later passes (control characters, removed from the input first).
_BOLD_MARK = "\x01"
_LINK_MARK = "\x02"

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.S)
_CODE = re.compile(r"`[^`\n]+`")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)
_LINK = re.compile(r"!?\[([^\]\n]*)\]\((https?://[^\s)]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_MARKED_LINK = re.compile(f"{_LINK_MARK}(\\d+){_LINK_MARK}")


def to_mrkdwn(text: str) -> str:
    """`text` (Markdown) as escaped Slack mrkdwn."""
    text = text.replace(_BOLD_MARK, "").replace(_LINK_MARK, "")  # never taken for a mark
    return around(  # a fence's language tag is dropped: Slack would show it as code
        _FENCE, text, outside=_prose, inside=lambda m: f"```{escape(m.group(1).rstrip())}```"
    )


def _prose(text: str) -> str:
    """Text outside fenced code: lines first (headings, list items), then inline marks."""
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    marked = around(_CODE, text, outside=_inline, inside=lambda m: escape(m.group(0)))
    return marked.replace(_BOLD_MARK, "*")


def _inline(text: str) -> str:
    links: list[str] = []

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        links.append(f"<{url}|{label}>" if label else f"<{url}>")
        return f"{_LINK_MARK}{len(links) - 1}{_LINK_MARK}"

    text = _LINK.sub(link, escape(text))  # URLs are kept whole: no mark inside them is read
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return _MARKED_LINK.sub(lambda m: links[int(m.group(1))], text)
