"""Replies as sanitised HTML: everything escaped, then a few safe marks (bold, code, links)."""

from __future__ import annotations

import html
import re

_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^\s)]{1,2000})\)")
_BARE_URL = re.compile(r"(?<![\"'=>])(https?://[^\s<]{1,2000})")
_BOLD = re.compile(r"\*\*([^*\n]{1,500})\*\*")
_CODE = re.compile(r"`([^`\n]{1,500})`")


def to_html(text: str) -> str:
    escaped = html.escape(text, quote=True)
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    escaped = _LINK.sub(r'<a href="\2" rel="noopener nofollow" target="_blank">\1</a>', escaped)
    escaped = _BARE_URL.sub(r'<a href="\1" rel="noopener nofollow" target="_blank">\1</a>', escaped)
    return escaped.replace("\n", "<br>")
