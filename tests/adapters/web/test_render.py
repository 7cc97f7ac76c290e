"""A model's Markdown on the chat page: formatted by markdown-it-py, sanitised by nh3."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from adapters.web.render import to_html
from tests.factories import Service

ANSWER = """## Refunds

Refunds take **5 business days**, *sometimes* less.
Ask [support](https://example.com/help) or write to <mailto:help@example.com>.

1. Open `Orders`
2. Pick ~~one~~ the item

> Sale items are final.

```python
print(1 < 2)
```

| Plan | Days |
|------|-----:|
| Pro  | 2    |"""


def test_markdown_becomes_formatted_html() -> None:
    html = to_html(ANSWER)
    for part in (
        "<h2>Refunds</h2>",
        "<strong>5 business days</strong>",
        "<em>sometimes</em>",
        "less.<br>",  # a model's line break is kept
        "<ol>\n<li>Open <code>Orders</code></li>",
        "<s>one</s>",
        "<blockquote>\n<p>Sale items are final.</p>\n</blockquote>",
        "<pre><code>print(1 &lt; 2)\n</code></pre>",
        "<th>Plan</th>",
    ):
        assert part in html, part
    link = '<a href="https://example.com/help" target="_blank" rel="noopener noreferrer">'
    assert f"{link}support</a>" in html
    assert 'href="mailto:help@example.com"' in html


@pytest.mark.parametrize(
    "answer",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)" onclick="alert(1)">click</a>',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "<javascript:alert(1)>",
        "![pic](javascript:alert(1))",
        '<div style="position:fixed">x</div><iframe src="https://evil.example"></iframe>',
    ],
)
def test_nothing_active_survives(answer: str) -> None:
    elements = _Elements()
    elements.feed(to_html(answer))
    for tag, attrs in elements.found:
        assert tag in {"p", "a", "br"}, tag
        assert set(attrs) <= {"href", "target", "rel"}, attrs
        assert (attrs.get("href") or "https:").startswith(("https:", "http:", "mailto:")), attrs


class _Elements(HTMLParser):
    """Every element of an HTML fragment, with its attributes (as a browser reads them)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def test_images_become_links_and_links_open_safely() -> None:
    html = to_html("![a cat](https://example.com/cat.png) and [plain](http://example.com)")
    assert "<img" not in html
    assert '<a href="https://example.com/cat.png" target="_blank"' in html and ">a cat</a>" in html
    assert html.count('rel="noopener noreferrer"') == 2


def test_bare_urls_become_links_and_file_names_stay_text() -> None:
    html = to_html("Policy: https://acme.example/refunds. Edit main.py or README.md.")
    assert '<a href="https://acme.example/refunds" target="_blank"' in html
    assert html.count("<a ") == 1 and "main.py" in html and "README.md" in html


async def test_the_api_keeps_the_text_and_adds_the_html(service: Service) -> None:
    deployment = await service.live_web_bot(fallback="See **docs** <b>now</b>")
    body = (await service.chat(deployment, "hi")).json()
    assert body["reply"] == "See **docs** <b>now</b>"  # as documented: the text as written
    assert body["html"] == "<p>See <strong>docs</strong> &lt;b&gt;now&lt;/b&gt;</p>\n"
    history = await service.client.get(
        f"/api/v1/chat/{deployment}/history", params={"session": body["session"]}
    )
    assert history.json()["messages"][-1]["html"] == body["html"]
