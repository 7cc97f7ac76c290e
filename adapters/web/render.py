"""A model's Markdown as HTML for the chat page: markdown-it-py renders it (raw HTML in the
answer stays text), then nh3 keeps only formatting tags and http(s)/mailto links, which open in
a new tab with `rel="noopener noreferrer"`. Images become links: the page loads nothing a model
names."""

from __future__ import annotations

from collections.abc import Sequence

import nh3
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from adapters.markup import markdown_parser

_TAGS = {
    *("p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote"),
    *("ul", "ol", "li", "a", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("table", "thead", "tbody", "tr", "th", "td"),
}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)


def _image_as_link(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    idx: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    image = tokens[idx]
    label = renderer.renderInlineAsText(image.children or [], options, env) or "image"
    return f'<a href="{escapeHtml(str(image.attrGet("src") or ""))}">{escapeHtml(label)}</a>'


_MARKDOWN = markdown_parser(tables=True)
_MARKDOWN.options["breaks"] = True  # a model's single line break is meant as one
_MARKDOWN.add_render_rule("image", _image_as_link)


def to_html(text: str) -> str:
    """`text` (Markdown) as sanitised HTML."""
    return str(_CLEANER.clean(_MARKDOWN.render(text)))
