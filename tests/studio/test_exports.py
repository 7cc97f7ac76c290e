"""`/export BOT [csv|json] [24h|7d|30d]`: the grammar (the two words in either order, one-line
errors), and the file the Studio answers with, read back and compared with the turns kept."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import pytest

from studio import presenters
from studio.commands import ExportConversations
from studio.exports import CSV_COLUMNS
from studio.grammar import GrammarError, parse
from tests.factories import Service

BOTS = ["faq-bot"]


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("/export faq-bot", ("faq-bot", "csv", "7d")),
        ("/export faq-bot json", ("faq-bot", "json", "7d")),
        ("/export faq-bot 30d", ("faq-bot", "csv", "30d")),
        ("/export faq-bot 24h JSON", ("faq-bot", "json", "24h")),
        ("export faq-bot csv 30d", ("faq-bot", "csv", "30d")),
        ("/export json 24h", (None, "json", "24h")),
    ],
)
def test_the_format_and_the_period_come_in_either_order(
    text: str, fields: tuple[str | None, str, str]
) -> None:
    command = parse(text, bots=BOTS)
    assert isinstance(command, ExportConversations)
    assert (command.bot, command.format, command.period) == fields


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/export faq-bot xml", "FORMAT must be 'csv' or 'json', not 'xml'."),
        ("/export faq-bot 2w", "PERIOD must be '24h', '7d' or '30d', not '2w'."),
        ("/export faq-bot json 1y", "PERIOD must be '24h', '7d' or '30d', not '1y'."),
        ("/export faq-bot csv json", "I didn't expect 'json'."),
        ("/export faq-bot 7d 30d", "I didn't expect '30d'."),
    ],
)
def test_bad_words_get_one_line_and_the_usage(text: str, problem: str) -> None:
    with pytest.raises(GrammarError) as raised:
        parse(text, bots=BOTS)
    assert raised.value.message == f"{problem}\nUsage: {ExportConversations.usage}"


# -- the file ---------------------------------------------------------------------------------


async def traffic(service: Service) -> list[dict[str, Any]]:
    """Two web conversations (one answer rated down) and a `/try`; the kept conversations, as
    the conversations API gives them, oldest first."""
    deployment = await service.live_web_bot(fallback='No idea, "yet",\nsorry.')
    first = (await service.chat(deployment, "hello")).json()
    second = (await service.chat(deployment, "again, with ü", first["session"])).json()
    rated = await service.client.post(
        f"/api/v1/chat/{deployment}/feedback",
        json={"session": first["session"], "message_id": second["message_id"], "rating": "down"},
    )
    assert rated.status_code == 204
    formula = '=HYPERLINK("http://evil.example","click")'  # must not run in a spreadsheet
    assert (await service.chat(deployment, formula)).status_code == 200
    await service.reply("/try faq-bot a sandbox question")  # never exported
    listed = await service.call("GET", "/api/v1/bots/faq-bot/conversations")
    return [
        await service.call("GET", f"/api/v1/bots/faq-bot/conversations/{c['id']}")
        for c in sorted(listed, key=lambda c: c["id"])
    ]


async def _file(service: Service, text: str, *, user: str | None = None) -> tuple[str, Any]:
    [message] = (await service.say(text, user=user))["messages"]
    return message["text"], message["file"]


async def test_a_csv_export_holds_every_message_kept(service: Service) -> None:
    kept = await traffic(service)
    text, file = await _file(service, "/export faq-bot")
    assert text == (
        "*faq-bot*: 2 conversations, 6 messages in the last 7 days, as CSV "
        "(faq-bot-conversations-7d.csv)."
    )
    assert (file["name"], file["mime"]) == ("faq-bot-conversations-7d.csv", "text/csv")
    header, *rows = list(csv.reader(io.StringIO(base64.b64decode(file["data"]).decode())))
    assert tuple(header) == CSV_COLUMNS
    assert rows == csv_rows(kept)
    assert rows[3][7] == 'No idea, "yet",\nsorry.' and rows[3][-2] == "1"  # rated down
    assert rows[2][7] == "again, with ü"


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def csv_rows(kept: list[dict[str, Any]]) -> list[list[str]]:
    """The CSV rows (after the header) that the conversations kept make."""
    return [
        [
            str(c["id"]),
            c["channel"],
            c["user"],
            c["started_at"],
            str(m["id"]),
            m["at"],
            m["role"],
            "'" + m["text"] if m["text"].startswith("=") else m["text"],
            cell(m["version"]),
            "",  # no A/B test
            cell(m["variant"]),
            cell(m["latency_ms"]),
            cell(m["prompt_tokens"]),
            cell(m["completion_tokens"]),
            cell(m["cost_usd"]),
            cell(m["error"]),
            str(m["ratings_up"]),
            str(m["ratings_down"]),
            cell(m["voice_s"]),
        ]
        for c in kept
        for m in c["messages"]
    ]


async def test_a_json_export_nests_the_messages_in_their_conversations(service: Service) -> None:
    kept = await traffic(service)
    text, file = await _file(service, "/export faq-bot 24h json")
    assert "2 conversations, 6 messages in the last 24 hours, as JSON" in text
    assert (file["name"], file["mime"]) == ("faq-bot-conversations-24h.json", "application/json")
    document = json.loads(base64.b64decode(file["data"]))
    assert (document["bot"], document["period"]) == ("faq-bot", "24h")
    assert document["since"] < kept[0]["started_at"] < document["until"]
    assert document["conversations"] == json_conversations(kept)


def json_conversations(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The JSON export's conversations that the conversations kept make."""
    return [
        {
            **{k: c[k] for k in ("id", "channel", "user", "started_at")},
            "messages": [{**m, "ab_test_id": None} for m in c["messages"]],
        }
        for c in kept
    ]


async def test_a_period_without_traffic_is_a_sentence_not_an_empty_file(
    service: Service,
) -> None:
    await service.import_bot()
    await service.reply("/try faq-bot only a sandbox question")
    [message] = (await service.say("/export faq-bot json"))["messages"]
    assert message["text"] == (
        "*faq-bot* had no conversations in the last 7 days: there is nothing to export."
    )
    assert message["file"] is None


async def test_a_file_too_big_for_chat_names_the_rest_call(service: Service) -> None:
    await traffic(service)
    service.app.state.core.studio.exports.max_bytes = 300
    [message] = (await service.say("/export faq-bot 30d"))["messages"]
    assert message["file"] is None
    assert message["text"] == (
        "*faq-bot*'s export of the last 30 days (2 conversations, 6 messages) is over "
        "300 bytes, too big for a file in chat. Download it through the REST API instead: "
        "`GET /api/v1/bots/faq-bot/export?format=csv&period=30d` with an admin API key "
        "(`Authorization: Bearer KEY`)."
    )


async def test_only_admins_and_owners_export(service: Service) -> None:
    await traffic(service)
    refused = await service.reply("/export faq-bot", user="bob")
    assert refused.startswith("Exporting conversations needs the admin role; you are a viewer.")
    await service.reply("/role bob editor")
    refused = await service.reply("/export faq-bot", user="bob")
    assert refused.startswith("Exporting conversations needs the admin role; you are an editor.")
    await service.reply("/role bob admin")
    _, file = await _file(service, "/export faq-bot", user="bob")
    assert file["name"] == "faq-bot-conversations-7d.csv"
    assert "no bot" in (await service.reply("/export nobody-bot")).lower()


def test_help_names_the_command() -> None:
    assert ExportConversations.usage in presenters.help_text("export").text
    assert ExportConversations.usage in presenters.help_text(None).text
