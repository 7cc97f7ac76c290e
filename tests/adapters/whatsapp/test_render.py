"""Replies in WhatsApp's forms: Markdown in WhatsApp's markup (and plain, as Messenger will take
it), long text in pieces, buttons within WhatsApp's limits, template parameters on one line."""

from __future__ import annotations

from adapters.meta.text import PLAIN, markdown_to_text, split_text
from adapters.whatsapp.render import (
    BODY_LIMIT,
    MESSAGE_LIMIT,
    TEMPLATE_TEXT,
    WHATSAPP,
    interactive,
    numbered,
    render,
    split,
    template_texts,
)
from runtime.messages import Address, Button, Field, OutgoingMessage


def whatsapp(text: str) -> str:
    return markdown_to_text(text, WHATSAPP)


def test_markdown_marks() -> None:
    assert whatsapp("# Title\n\n**bold**, *it*, ~~gone~~, `x = 1`") == (
        "*Title*\n\n*bold*, _it_, ~gone~, `x = 1`"
    )
    assert whatsapp("***both***") == "_*both*_"
    assert markdown_to_text("# Title\n\n**bold** `x`", PLAIN) == "Title\n\nbold x"


def test_blocks_lists_quotes_and_code() -> None:
    assert whatsapp("- one\n- two\n  - deeper\n\n3. c\n4. d") == (
        "• one\n• two\n   • deeper\n\n3. c\n4. d"
    )
    assert whatsapp("> said\n> twice\n\nthen") == "> said\n> twice\n\nthen"
    assert whatsapp("```python\nprint('*x*')\n```\n\nafter") == "```print('*x*')```\n\nafter"
    assert whatsapp("line\nbreak\n\n---\n\nend") == "line\nbreak\n\n———\n\nend"


def test_links_show_their_address_and_nothing_is_escaped() -> None:
    assert whatsapp("[docs](https://x.y/z) and https://a.b/c") == (
        "docs (https://x.y/z) and https://a.b/c"
    )
    assert whatsapp("![a cat](https://c.at/1.png)") == "a cat (https://c.at/1.png)"
    assert whatsapp("<b>html</b> & 5 * 3 = snake_case") == "<b>html</b> & 5 * 3 = snake_case"


def test_fields_follow_the_text() -> None:
    address = Address(channel="whatsapp", deployment_id="d", conversation="1", user="whatsapp:1")
    message = OutgoingMessage(
        address=address, text="Stats", fields=(Field(label="Turns", value="12"),)
    )
    assert render(message) == "Stats\n\n*Turns*: 12"


def test_long_text_is_cut_between_paragraphs_and_code_stays_closed() -> None:
    paragraphs = "\n\n".join(["word " * 300] * 5)
    pieces = split(paragraphs)
    assert all(len(piece) <= MESSAGE_LIMIT for piece in pieces)
    assert " ".join(pieces).split() == paragraphs.split()
    code = whatsapp("```\n" + "x\n" * 3000 + "```\nend")
    first, second = split(code)
    assert first.startswith("```x") and first.endswith("x```") and len(first) <= MESSAGE_LIMIT
    assert second.startswith("```x") and second.endswith("x```\n\nend")
    assert split_text("a" * 25, 10) == ["a" * 10, "a" * 10, "a" * 5]
    assert split("   \n\n  ") == []


def test_buttons_reply_buttons_a_list_or_none() -> None:
    two = interactive((Button(label="Yes", action="y"), Button(label="No", action="n")), "Ok?")
    assert two is not None and two["type"] == "button"
    assert [b["reply"] for b in two["action"]["buttons"]] == [
        {"id": "y", "title": "Yes"},
        {"id": "n", "title": "No"},
    ]
    wordy = interactive((Button(label="A much longer answer, thirty-plus", action="a"),), "Ok?")
    assert wordy is not None and wordy["type"] == "list"
    (row,) = wordy["action"]["sections"][0]["rows"]
    assert len(row["title"]) == 24 and row["description"] == "A much longer answer, thirty-plus"
    eleven = tuple(Button(label=str(n), action=str(n)) for n in range(11))
    assert interactive(eleven, "Pick") is None
    twins = (Button(label="Same", action="a"), Button(label="Same", action="b"))
    assert interactive(twins, "Pick") is None
    assert numbered(twins) == "1. Same\n2. Same"


def test_template_parameters_are_one_line_in_pieces() -> None:
    assert template_texts("Hello\n\nthere,\tfriend     !") == ["Hello there, friend !"]
    pieces = template_texts("word " * 400)
    assert len(pieces) == 3 and all(len(p) <= TEMPLATE_TEXT for p in pieces)
    assert all("\n" not in p and "  " not in p for p in pieces)
    assert TEMPLATE_TEXT < BODY_LIMIT
