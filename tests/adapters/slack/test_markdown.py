"""A model's Markdown as Slack mrkdwn: marks converted, code left as written, text escaped."""

from __future__ import annotations

import pytest

from adapters.slack.markdown import to_mrkdwn
from adapters.slack.render import blocks, fallback_text
from runtime.messages import Address, OutgoingMessage


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**Refunds** take *5 days*.", "*Refunds* take _5 days_."),
        ("__Note__: ~~old~~ new", "*Note*: ~old~ new"),
        ("# Refund policy\nText", "*Refund policy*\nText"),
        (
            "## Steps ##\n- one\n- two **now**\n  * nested",
            "*Steps*\n• one\n• two *now*\n  • nested",
        ),
        (
            "See [the policy](https://x.example/a_b?c=1&d=2).",
            "See <https://x.example/a_b?c=1&amp;d=2|the policy>.",
        ),
        ("![chart](https://x.example/c.png)", "<https://x.example/c.png|chart>"),
        ("use `a*b*c` and `<tag>`", "use `a*b*c` and `&lt;tag&gt;`"),
        (
            "```python\nif a < b and **c**:\n    pass\n```\nDone.",
            "```if a &lt; b and **c**:\n    pass```\nDone.",
        ),
        ("2 * 3 * 4 = 24, a < b & c > d", "2 * 3 * 4 = 24, a &lt; b &amp; c &gt; d"),
        ("**unclosed and *half", "**unclosed and *half"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("<!channel> <@U123>", "&lt;!channel&gt; &lt;@U123&gt;"),  # no mentions from a model
        ("\x027\x02 and \x01x\x01", "7 and x"),  # the converter's own marks are not input
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert to_mrkdwn(markdown) == mrkdwn


def test_only_a_bots_answer_is_converted() -> None:
    address = Address(channel="slack", deployment_id="d1", conversation="C1", user="U1")
    message = OutgoingMessage(address=address, text="**Hi** <there>")
    bot = blocks(message, markdown=True)[0]["text"]["text"]
    studio = blocks(message)[0]["text"]["text"]
    assert bot == "*Hi* &lt;there&gt;"
    assert studio == "**Hi** &lt;there&gt;"  # the Studio's own text is already mrkdwn
    assert fallback_text(message, markdown=True) == bot
