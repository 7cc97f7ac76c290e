"""`GET /api/v1/bots/{bot}/export`: the spec as YAML without `format` (or with `format=yaml`),
the conversations of a period streamed as CSV or JSON with `format=csv|json` (admins), read
back and compared with the turns kept."""

from __future__ import annotations

import csv
import io
import json

import httpx
import yaml

from adapters.web.export_api import (
    ConversationsExportOut,
    ExportedConversationOut,
    ExportedMessageOut,
)
from studio.exports import CONVERSATION_FIELDS, CSV_COLUMNS, MESSAGE_FIELDS
from tests.factories import Service
from tests.studio.test_exports import csv_rows, json_conversations, traffic

PATH = "/api/v1/bots/faq-bot/export"


async def _get(service: Service, key: str | None = None, **params: str) -> httpx.Response:
    return await service.client.get(PATH, params=params, headers=service.auth(key))


async def test_csv_streams_one_row_per_message_kept(service: Service) -> None:
    kept = await traffic(service)
    exports = service.app.state.core.studio.exports
    for page in (1000, 2):  # pages that end inside a conversation, and between two
        exports.page = page
        response = await _get(service, format="csv")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["content-disposition"] == (
            'attachment; filename="faq-bot-conversations-7d.csv"'
        )
        header, *rows = list(csv.reader(io.StringIO(response.text)))
        assert tuple(header) == CSV_COLUMNS and rows == csv_rows(kept)


async def test_json_is_one_document_with_the_conversations(service: Service) -> None:
    kept = await traffic(service)
    exports = service.app.state.core.studio.exports
    for page in (1000, 1, 2, 3):
        exports.page = page
        response = await _get(service, format="json", period="30d")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["content-disposition"] == (
            'attachment; filename="faq-bot-conversations-30d.json"'
        )
        document = json.loads(response.text)
        ConversationsExportOut.model_validate(document)  # as the OpenAPI document says
        assert (document["bot"], document["period"]) == ("faq-bot", "30d")
        assert document["conversations"] == json_conversations(kept)


async def test_without_traffic_the_files_are_empty_but_well_formed(service: Service) -> None:
    await service.import_bot()
    await service.reply("/try faq-bot a sandbox question")  # never exported
    empty = await _get(service, format="csv", period="24h")
    assert empty.status_code == 200 and empty.text == ",".join(CSV_COLUMNS) + "\r\n"
    document = (await _get(service, format="json")).json()
    assert document["conversations"] == [] and document["bot"] == "faq-bot"


async def test_without_a_format_or_with_yaml_it_is_the_spec(service: Service) -> None:
    await service.import_bot()
    for params in ({}, {"format": "yaml"}, {"format": "yaml", "period": "forever"}):
        response = await _get(service, **params)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/yaml"
        assert yaml.safe_load(response.text)["name"] == "faq-bot"


async def test_bad_asks_roles_and_other_teams(service: Service) -> None:
    await traffic(service)
    bad = await _get(service, format="xml")
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "format must be csv or json (or yaml for the bot's spec), not 'xml'"
    }
    bad = await _get(service, format="csv", period="1y")
    assert bad.status_code == 400
    assert bad.json() == {"error": "period must be one of 24h, 7d, 30d, not '1y'"}
    ops = service.app.state.core.ops
    for role in ("viewer", "editor"):
        key = (await ops.create_api_key(team="local", role=role, name=role)).key
        refused = await _get(service, key, format="csv")
        assert refused.status_code == 403
        assert refused.json()["error"].startswith("Exporting conversations needs the admin role")
        assert (await _get(service, key)).status_code == 200  # the spec stays readable
    admin = (await ops.create_api_key(team="local", role="admin", name="ada")).key
    assert (await _get(service, admin, format="json")).status_code == 200
    other = (await ops.create_team("acme")).key
    hidden = await _get(service, other, format="csv")
    assert hidden.status_code == 404 and "faq-bot" in hidden.json()["error"]


def test_the_documented_json_has_the_exported_fields() -> None:
    assert tuple(ExportedMessageOut.model_fields) == MESSAGE_FIELDS
    assert tuple(ExportedConversationOut.model_fields) == (*CONVERSATION_FIELDS, "messages")
