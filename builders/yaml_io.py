"""YAML export and import of bot specs."""

from __future__ import annotations

from typing import Any

import yaml

from builders.spec import BotSpec
from builders.validation import SpecError, parse_spec


class YamlError(ValueError):
    """The text is not valid YAML; the message names the line."""


def spec_to_yaml(spec: BotSpec) -> str:
    """Every field, defaults too (those left out when unset stay out)."""
    data = spec.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def read_yaml(text: str) -> Any:
    """The document in `text`, not yet checked as a spec. Raises `YamlError` for bad syntax,
    `SpecError` for an empty document."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise YamlError(f"malformed YAML at {line}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlError(f"malformed YAML: {exc}") from None
    except RecursionError:
        raise YamlError("the YAML is nested too deeply to be a bot spec") from None
    if data is None:
        raise SpecError(["spec: the document is empty"])
    return data


def spec_from_yaml(text: str) -> BotSpec:
    """Parse YAML into a spec. Raises `YamlError` for bad syntax, `SpecError` for a bad spec."""
    return parse_spec(read_yaml(text))
