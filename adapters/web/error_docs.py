"""How routes document their errors: every error body is `{"error": "one line"}`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_MEANING = {
    400: "The request is malformed",
    401: "Missing or invalid API key",
    403: "The key's role may not do this",
    404: "No such thing in this team",
    409: "Refused as things stand (the message says why)",
    413: "Too large",
    422: "A field is invalid (the message names it)",
    429: "Too many messages; wait a moment",
    501: "Not available in this service",
    502: "The platform refused the message (the message says why)",
}


class ErrorOut(BaseModel):
    error: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that can answer with these error statuses."""
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}


API_ERRORS = errors(400, 401, 403, 404, 409, 413, 422)
"""What any route acting with an API key may answer besides its success."""
