"""Masking personal data: what is masked, and what is left alone."""

from __future__ import annotations

import pytest

from runtime.turn.pii import luhn_ok, mask_pii


@pytest.mark.parametrize(
    ("said", "masked"),
    [
        ("write to ann.lee+shop@mail.example.co.uk today", "write to [email] today"),
        ("ANN@EXAMPLE.COM", "[email]"),
        ("visa 4111111111111111", "visa [card]"),
        ("card 4111 1111 1111 1111 exp 12/27", "card [card] exp 12/27"),
        ("amex 3782-822463-10005.", "amex [card]."),
        ("call +44 20 7946 0958", "call [phone]"),
        ("call +1 (555) 123-4567 now", "call [phone] now"),
        ("(555) 123-4567", "[phone]"),
        ("555.123.4567 or 0612345678", "[phone] or [phone]"),
        ("mine: 06 12 34 56 78", "mine: [phone]"),
        ("a@b.io and +49 30 1234567", "[email] and [phone]"),
    ],
)
def test_personal_data_becomes_placeholders(said: str, masked: str) -> None:
    assert mask_pii(said) == masked


@pytest.mark.parametrize(
    "said",
    [
        "order 12345 shipped",
        "on 2026-01-15 at 12:30",
        "it costs $1,234.56",
        "server 192.168.100.200 is down",
        "4111 1111 1111 1112",  # 16 digits that fail the Luhn check: not a card
        "ref 1234567890123456789012",  # too long for a card or a phone number
        "room 101, floor 7",
        "user@localhost",  # no domain: not an email address
        "call 555-1234",  # too short to be told from other numbers
    ],
)
def test_other_text_and_numbers_stay(said: str) -> None:
    assert mask_pii(said) == said


def test_the_luhn_check() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005") and luhn_ok("0")
    assert not luhn_ok("4111111111111112") and not luhn_ok("1234567812345678")
