"""How the routes answer errors, for the OpenAPI document: always `{"error": "one line"}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_MEANING = {
    400: "Malformed input (bad JSON or YAML, a value out of range)",
    401: "Missing or invalid API key",
    403: "The key's role may not do this",
    404: "No such bot, version, deployment or test",
    409: "The state does not allow it (exists already, changed meanwhile, nothing to roll back)",
    413: "The body or a message is over its limit",
    422: "A value fails validation",
    429: "Too many messages; wait a moment",
    501: "The channel is not configured in this service",
}


class ErrorOut(BaseModel):
    error: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}


API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422)
"""What any route acting with an API key may answer besides its success."""
