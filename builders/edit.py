"""Typed edits of a draft: `/set BOT FIELD VALUE` and REST PATCH both land here."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from builders.spec import BotSpec, Retrieval
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
    "knowledge.k",
    "knowledge.min_score",
)
_NUMERIC = {"temperature": float, "history": int, "knowledge.k": int, "knowledge.min_score": float}
# Fields people name by what they tune, kept in a section of the spec: (section, key).
_NESTED = {"knowledge.k": ("retrieval", "k"), "knowledge.min_score": ("retrieval", "min_score")}
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
    if field in _NESTED:
        try:
            Retrieval.model_validate({_NESTED[field][1]: value})
        except ValidationError as exc:
            raise SpecError([f"{field}: {exc.errors()[0]['msg'].lower()}"]) from None
    return value


def field_value(spec: BotSpec, field: str) -> Any:
    """The value of a settable field (`knowledge.k` lives in the spec's `retrieval`)."""
    section, key = _NESTED.get(field, (None, field))
    return getattr(spec if section is None else getattr(spec, section), key)


def apply_changes(spec: BotSpec, changes: dict[str, Any]) -> BotSpec:
    """A new spec with `changes` applied, validated as a whole. The name cannot change."""
    if "name" in changes and changes["name"] != spec.name:
        raise SpecError(["name: a bot cannot be renamed; export it and import it under a new name"])
    data = spec.model_dump(mode="json")
    data.update({field: value for field, value in changes.items() if field not in _NESTED})
    for field, value in changes.items():
        if field in _NESTED:
            section, key = _NESTED[field]
            held = data.get(section)
            if held is None:
                held = {}
            if not isinstance(held, dict):
                raise SpecError([f"{section}: must be a mapping, not {type(held).__name__}"])
            data[section] = {**held, key: value}
    return parse_spec(data)
