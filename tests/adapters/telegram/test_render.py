"""A model's Markdown as Telegram HTML: the tags Telegram allows, everything else escaped, and
long replies split at 4,096 characters without breaking a tag or an entity."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from adapters.telegram.render import MESSAGE_LIMIT, markdown_to_html, plain_text, split_html

ALLOWED = {"b", "i", "s", "u", "a", "code", "pre", "blockquote"}


class _Checked(HTMLParser):
    """The tags of a fragment, which must be balanced and Telegram's."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []
        self.feed(fragment)
        self.close()
        assert not self.open, f"left open: {self.open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in ALLOWED, tag
        self.open.append(tag)
        self.seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, tag


def test_markdown_becomes_telegram_html() -> None:
    answer = (
        "## Refunds\n\nThey take **5 days**, *sometimes* ~~more~~ less.\n"
        "See [the policy](https://example.com/p?a=1&b=2).\n\n"
        "1. Open `Orders`\n2. Pick the item\n   - any item\n\n"
        "> Sale items are final.\n\n```python\nprint(1 < 2)\n```\n\n---\n"
    )
    assert markdown_to_html(answer) == (
        "<b>Refunds</b>\n\nThey take <b>5 days</b>, <i>sometimes</i> <s>more</s> less.\n"
        'See <a href="https://example.com/p?a=1&amp;b=2">the policy</a>.\n\n'
        "1. Open <code>Orders</code>\n2. Pick the item\n   • any item\n\n"
        "<blockquote>Sale items are final.</blockquote>\n\n"
        '<pre><code class="language-python">print(1 &lt; 2)</code></pre>\n\n———'
    )
    assert markdown_to_html("Refunds take 5 business days.") == "Refunds take 5 business days."


@pytest.mark.parametrize(
    "answer",
    [
        "<script>alert(1)</script> <b onclick='x'>bold?</b> <tg-spoiler>x</tg-spoiler>",
        "[click](javascript:alert(1)) ![pic](data:image/png;base64,AAAA) <https://ok.example>",
        "# Title with [a `code` link](https://example.com)\n\n> > nested\n> quote\n\n| a | b |",
        "1 < 2 & 3 > 2; &amp; &copy; &#60;b&#62; \\*not bold\\*",
    ],
)
def test_only_telegrams_tags_and_links_remain(answer: str) -> None:
    checked = _Checked(markdown_to_html(answer))
    for tag, attrs in checked.seen:
        assert set(attrs) <= {"href", "class"}, (tag, attrs)
        assert (attrs.get("href") or "https://").startswith(("https://", "http://")), attrs
    assert plain_text(markdown_to_html("1 < 2 & <b>x</b>")) == "1 < 2 & <b>x</b>"  # as written


@pytest.mark.parametrize(
    "answer",
    [
        ("A long answer line.\n" * 600).strip(),  # one paragraph of lines
        "\n\n".join(f"Paragraph {n} with **bold** words. " * 8 for n in range(60)),
        "**" + "bold words & more " * 700 + "end**",  # one tag over three messages
        "```\n" + "x = 1 & 2 < 3\n" * 900 + "```",  # one code block
        "&" * 6000,  # no break at all: never inside an entity
        "> " + "quoted " * 1500 + "\n\n- " + "item " * 1200,
    ],
)
def test_long_replies_split_into_whole_messages(answer: str) -> None:
    rendered = markdown_to_html(answer)
    messages = split_html(rendered)
    assert len(messages) > 1 and all(len(m) <= MESSAGE_LIMIT for m in messages)
    for message in messages:
        _Checked(message)
        assert "&" not in message.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    shown = "".join(plain_text(m) for m in messages)
    assert shown.split() == plain_text(rendered).split()  # nothing lost, nothing repeated
    assert min(len(m) for m in messages[:-1]) > MESSAGE_LIMIT // 2  # no tiny pieces


def test_lines_are_kept_whole_where_a_line_ends() -> None:
    messages = split_html(markdown_to_html(("A long answer line.\n" * 600).strip()))
    assert sum(plain_text(m).count("A long answer line.") for m in messages) == 600


def test_bare_urls_become_links() -> None:
    html = markdown_to_html("See https://acme.example/refunds?a=1&b=2 or notes.md")
    assert html == (
        'See <a href="https://acme.example/refunds?a=1&amp;b=2">'
        "https://acme.example/refunds?a=1&amp;b=2</a> or notes.md"
    )


def test_an_empty_answer_is_no_message() -> None:
    assert split_html(markdown_to_html("")) == [] and split_html(markdown_to_html(" \n ")) == []
