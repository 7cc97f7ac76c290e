"""Masking personal data in an end user's message: emails, payment card numbers (Luhn-checked)
and phone numbers become `[email]`, `[card]`, `[phone]`.

Patterns, not a classifier: a phone number is 10-15 digits (8-15 after a `+`) in the usual
groupings, so dates, prices and short codes stay; IPv4 addresses are left alone. A card number is
13-19 digits that pass the Luhn check; a longer digit run that fails it is not masked as a card.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runtime.pipeline import TurnContext

EMAIL = "[email]"
CARD = "[card]"
PHONE = "[phone]"

# An email address standing alone (what masking hides and an `extract` step's email field finds).
EMAIL_PATTERN = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|\(\+?)?\d(?:[ .()-]{0,2}\d){6,16}(?![\w])\)?")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


def luhn_ok(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum (payment card numbers do)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match[0])
    return CARD if luhn_ok(digits) else match[0]


def _phone(match: re.Match[str]) -> str:
    found = match[0]
    if _IPV4.fullmatch(found):
        return found
    digits = sum(char.isdigit() for char in found)
    least = 8 if found.lstrip("(").startswith("+") else 10
    return PHONE if least <= digits <= 15 else found


def mask_pii(text: str) -> str:
    """`text` with emails, card numbers and phone numbers replaced by their placeholders."""
    text = EMAIL_PATTERN.sub(EMAIL, text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)


def mask_turn(ctx: TurnContext) -> None:
    """When the bot's guardrails say `pii`: the end user's message masked for the rest of the
    turn and in the transcript (the guardrails step, and a message relayed to the team)."""
    if ctx.spec.guardrails.pii:
        masked = mask_pii(ctx.text)
        if masked != ctx.text:
            ctx.text = masked
            ctx.stored_text = masked
