"""Turning pydantic errors into short messages a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from builders.spec import OFFLINE_MODEL, BotSpec
from builders.tokens import TOKEN_REFUSAL, has_token

MODERATION_NEEDS_MODEL = "moderation needs a provider model (this bot's model is offline)"


class SpecError(ValueError):
    """A spec (or an edit of one) is invalid. `problems` are one line each, naming the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _location(loc: tuple[int | str, ...], root: str = "spec") -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif not parts:
            parts.append(item)
        else:
            parts.append(f".{item}")
    return "".join(parts) or root


_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "is required",
    "greater_than": "must be more than {gt:g}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_long": "is too long (at most {max_length} characters)",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "has an invalid format",
    "float_parsing": "must be a number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "too_short": "must not be empty",
    "too_long": "has too many items (at most {max_length})",
}


def human_problems(error: ValidationError, *, root: str = "spec") -> list[str]:
    """One line per problem, each naming where it is (`root` names the validated value itself)."""
    problems = []
    for item in error.errors(include_url=False):
        where = _location(tuple(item["loc"]), root)
        template = _MESSAGES.get(item["type"])
        ctx = item.get("ctx") or {}
        if template is not None:
            try:
                text = template.format(**ctx)
            except (KeyError, IndexError):
                text = template
        else:
            text = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {text}")
    return problems


def parse_spec(data: Any) -> BotSpec:
    """Validate raw data (from YAML, JSON or an edit) into a `BotSpec`, or raise `SpecError`."""
    if not isinstance(data, dict):
        raise SpecError(["spec: expected a mapping of fields (name, prompt, model, ...)"])
    try:
        return BotSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(human_problems(exc)) from None


def not_storable(spec: BotSpec) -> list[str]:
    """Why a valid spec may still not be stored: it asks for moderation without a provider
    model, or its text holds a bot token. One line per field; empty when it may be stored."""
    problems: list[str] = []
    if spec.guardrails.moderation and spec.model == OFFLINE_MODEL:
        problems.append(f"guardrails.moderation: {MODERATION_NEEDS_MODEL}")
    data = spec.model_dump(mode="json")
    problems += [f"{name}: {TOKEN_REFUSAL}" for name, value in data.items() if _has_token(value)]
    return problems


def _has_token(value: Any) -> bool:
    if isinstance(value, str):
        return has_token(value)
    if isinstance(value, dict):
        return any(_has_token(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_token(item) for item in value)
    return False
