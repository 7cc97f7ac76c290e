"""Typed edits of a draft: `/set BOT FIELD VALUE` and REST PATCH both land here."""

from __future__ import annotations

from typing import Any

from builders.spec import BotSpec
from builders.validation import SpecError, parse_spec

SETTABLE_FIELDS = (
    "prompt",
    "model",
    "temperature",
    "greeting",
    "fallback",
    "description",
    "history",
    "voice",
)
_NUMERIC = {"temperature": float, "history": int}
_SWITCHES = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


def coerce_field(field: str, raw: str) -> str | int | float | bool:
    """Turn the text a person typed into the field's type, or raise `SpecError`."""
    if field not in SETTABLE_FIELDS:
        raise SpecError([f"{field}: unknown field; you can set {', '.join(SETTABLE_FIELDS)}"])
    if field == "voice":
        switch = _SWITCHES.get(raw.strip().lower())
        if switch is None:
            raise SpecError([f"voice: say on or off, not '{raw[:30]}'"])
        return switch
    kind = _NUMERIC.get(field)
    if kind is None:
        return raw
    try:
        value: int | float = kind(raw)
    except ValueError:
        noun = "a number" if kind is float else "a whole number"
        raise SpecError([f"{field}: must be {noun}, got '{raw}'"]) from None
    return value


def apply_changes(spec: BotSpec, changes: dict[str, Any]) -> BotSpec:
    """A new spec with `changes` applied, validated as a whole. The name cannot change."""
    if "name" in changes and changes["name"] != spec.name:
        raise SpecError(["name: a bot cannot be renamed; export it and import it under a new name"])
    data = spec.model_dump(mode="json")
    data.update(changes)
    return parse_spec(data)
