"""Bot tokens are recognised whole wherever they appear, whatever their last character."""

from __future__ import annotations

import pytest

from runtime.cipher import BOT_TOKEN, redact_tokens

TOKEN = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"


@pytest.mark.parametrize("tail", ["0", "_", "-", "--"])
def test_a_token_is_matched_whole_whatever_it_ends_with(tail: str) -> None:
    token = TOKEN[: -len(tail)] + tail
    assert BOT_TOKEN.fullmatch(token)
    found = BOT_TOKEN.search(f"here: {token}.")
    assert found is not None and found.group(0) == token
    assert redact_tokens(f"deploy faq-bot telegram {token}") == (
        "deploy faq-bot telegram [token removed]"
    )


def test_longer_words_are_not_tokens() -> None:
    assert BOT_TOKEN.search("x" + TOKEN) is None
    assert BOT_TOKEN.search(TOKEN + "Z" * 40) is None  # more than 64 after the colon
    assert redact_tokens("version 2:30 at noon") == "version 2:30 at noon"


def test_slack_tokens_are_redacted_too() -> None:
    text = "bot xoxb-1234567890-0987654321-AbCdEf and app xapp-1-A0123-4567-abcdef0123"
    assert redact_tokens(text) == "bot [token removed] and app [token removed]"
