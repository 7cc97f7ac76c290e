"""Bot tokens recognised in text: one definition for refusing them in a spec and for redacting
them from logs, audit and stored messages. Also a secret's value typed right after `/secret set
NAME` (the Studio asks for it privately instead): removed the same way, before it is stored."""

from __future__ import annotations

import re

# A Telegram bot token (BotFather's `123456789:AA…`). Not `\b`: a token may end in "-", after
# which `\b` cannot match.
BOT_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(\d{5,12}):[A-Za-z0-9_-]{30,64}(?![A-Za-z0-9_-])")
# Slack bot, user, app-level and refreshable tokens.
SLACK_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])(?:xox[bpe]|xapp)-[A-Za-z0-9-]{10,}")
# Meta's access tokens (WhatsApp Cloud API, Messenger page tokens).
META_TOKEN = re.compile(r"(?<![A-Za-z0-9])EAA[A-Za-z0-9]{40,}(?![A-Za-z0-9])")
TOKENS = (BOT_TOKEN, SLACK_TOKEN, META_TOKEN)
TOKEN_REFUSAL = "that looks like a bot token: secrets are never stored in a bot's text"
REDACTED = "[token removed]"
# `/secret set NAME VALUE`, also as Telegram's `/secret@Bot`, after a Slack mention, `/studio`
# or a polite word (as the Studio's grammar reads them), anywhere in a message.
SECRET_TYPED = re.compile(
    r"(?is)^(\s*(?:<@\w+>\s*)?(?:/?studio(?:@\S+)?\s+)?"
    r"(?:(?:please|pls|kindly|can\s+you|could\s+you|would\s+you)[\s,]+)*"
    r"/?secrets?(?:@\w+)?\s+set\s+\S+)\s+\S.*"
)
VALUE_REDACTED = "[value removed]"


def has_token(text: str) -> bool:
    return any(pattern.search(text) for pattern in TOKENS)


def typed_secret(text: str) -> bool:
    return SECRET_TYPED.match(text) is not None


def redact_tokens(text: str) -> str:
    for pattern in TOKENS:
        text = pattern.sub(REDACTED, text)
    return text


def redact_studio_input(text: str) -> str:
    """What is said to the Studio, as it may be stored: bot tokens and a secret's value typed
    after `/secret set NAME` removed (the Studio refuses both, and asks for them privately)."""
    return SECRET_TYPED.sub(rf"\1 {VALUE_REDACTED}", redact_tokens(text))
