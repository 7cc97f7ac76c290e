"""The OpenAPI document says how to authenticate and what errors look like."""

from __future__ import annotations

import json
from typing import Any

from tests.factories import Service

ERROR = {"$ref": "#/components/schemas/ErrorOut"}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_keyed_routes_declare_the_bearer_scheme(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path, operation in _operations(document):
        keyed = not path.startswith("/api/v1/chat/")
        assert (operation.get("security") == [{"bearerAuth": []}]) is keyed, (method, path)


async def test_errors_are_documented_as_one_error_string(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(document)
    assert document["components"]["schemas"]["ErrorOut"]["properties"] == {
        "error": {"type": "string", "title": "Error"}
    }
    for method, path, operation in _operations(document):
        codes = {int(code) for code in operation["responses"] if int(code) >= 400}
        expected = {400, 404, 413, 422, 429} if path.startswith("/api/v1/chat/") else {401, 403}
        assert expected <= codes, (method, path)
        for code in codes:
            content = operation["responses"][str(code)]["content"]
            assert content == {"application/json": {"schema": ERROR}}, (method, path, code)


async def test_the_yaml_export_is_documented_as_a_spec(service: Service) -> None:
    document = (await service.client.get("/openapi.json")).json()
    ok = document["paths"]["/api/v1/bots/{bot}/export"]["get"]["responses"]["200"]
    assert ok["content"] == {
        "application/yaml": {"schema": {"$ref": "#/components/schemas/BotSpec"}},
        # with format=csv|json: the conversations (tests/adapters/web/test_export_api.py)
        "application/json": {"schema": {"$ref": "#/components/schemas/ConversationsExportOut"}},
        "text/csv": {"schema": {"type": "string"}},
    }
    await service.import_bot()
    exported = await service.client.get("/api/v1/bots/faq-bot/export", headers=service.auth())
    assert exported.headers["content-type"].startswith("application/yaml")


async def test_rest_times_carry_their_utc_offset(service: Service) -> None:
    bot = await service.import_bot()
    assert bot["updated_at"].endswith("Z") or bot["updated_at"].endswith("+00:00")
