"""What the Slack and Telegram fronts read from what people type and where they type it."""

from __future__ import annotations

from adapters.slack.front import FRONT as SLACK
from adapters.telegram.front import FRONT as TELEGRAM
from runtime.team_front import Spot
from studio.address import studio_address


def test_slack_rooms_are_channels_by_name_or_id() -> None:
    assert [SLACK.room(said) for said in ("#support", "C0123", "slack:G0456", " #x ")] == [
        "#support",
        "C0123",
        "G0456",
        "#x",
    ]
    assert SLACK.room("support") == "#support"  # a channel named without its "#"
    assert [SLACK.room(said) for said in ("#", "12345", "D0123", "-1001", "Moon!")] == [None] * 5
    assert SLACK.chat("C0123") is None


def test_slack_says_where_a_message_was_said_and_where_a_member_is_told() -> None:
    in_channel = studio_address("slack", 1, "slack:U1", thread="C0123:1700000000.1")
    in_dm = studio_address("slack", 1, "slack:U1", thread="D0999:")
    assert SLACK.spot(in_channel) == Spot("C0123", direct=False)
    assert SLACK.spot(in_dm) == Spot("D0999", direct=True)
    assert SLACK.spot(studio_address("slack", 1, "slack:U1")) is None
    assert (SLACK.dm("slack:U1"), SLACK.dm("telegram:7")) == ("U1:", None)
    assert SLACK.report_thread("C0123") == "C0123:"


def test_telegram_rooms_are_groups_and_chats_are_any_chat() -> None:
    assert (TELEGRAM.room("-1001"), TELEGRAM.room("telegram:-42")) == ("-1001", "-42")
    assert (TELEGRAM.room("1001"), TELEGRAM.room("#support")) == (None, None)
    group, person = TELEGRAM.chat("-1001"), TELEGRAM.chat("telegram:7")
    assert group is not None and (group.id, group.name) == ("-1001", "Telegram group -1001")
    assert person is not None and (person.id, person.name) == ("7", "Telegram chat 7")
    assert TELEGRAM.chat("C0123") is None


def test_telegram_says_where_a_message_was_said_and_where_a_member_is_told() -> None:
    in_dm = studio_address(TELEGRAM.channel, 1, "telegram:7", thread="7")
    in_group = studio_address(TELEGRAM.channel, 1, "telegram:7", thread="-1001")
    assert TELEGRAM.spot(in_dm) == Spot("7", direct=True)
    assert TELEGRAM.spot(in_group) == Spot("-1001", direct=False)
    assert (TELEGRAM.dm("telegram:7"), TELEGRAM.dm("slack:U1")) == ("7", None)
    assert TELEGRAM.report_thread("-1001") == "-1001"
