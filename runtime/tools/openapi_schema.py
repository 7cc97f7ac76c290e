"""The parts of an OpenAPI document that need care: local references and schemas.

`Reader` follows `$ref`s only inside the document (`#/...` JSON pointers), with chains bounded
and a reference to itself refused. `Schemas` rebuilds an OpenAPI schema (3.0 or 3.1) as the JSON
schema a model is offered and the gateway validates with: only the keywords both use, values of
the wrong type dropped, 3.0's `nullable` and boolean exclusive bounds translated, read-only
properties left out (a request does not send them), a schema that recurs cut to its type where
it recurs, parts deeper than the spec's `MAX_PARAM_DEPTH` cut to their type, and at most
`MAX_SCHEMA_PARTS` schemas read per operation (YAML aliases can fan out).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import unquote

from pydantic import JsonValue

from builders.spec import MAX_PARAM_DEPTH
from runtime.tools.base import ToolSetupError

MAX_REF_CHAIN = 32  # references to references
MAX_SCHEMA_PARTS = 2000  # schemas read for one operation
MAX_SCHEMA_DESCRIPTION = 500
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_NUMBERS = ("minimum", "maximum", "multipleOf")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_COMBINATIONS = ("anyOf", "oneOf", "allOf")


class Reader:
    """The document and its local references (`#/...`, JSON pointers)."""

    def __init__(self, document: dict[str, Any], *, shown: str) -> None:
        self.document = document
        self.shown = shown
        self.version_30 = str(document.get("openapi", "")).startswith("3.0")

    def follow(self, node: Any) -> Any:
        return self.chain(node)[0]

    def chain(self, node: Any) -> tuple[Any, tuple[str, ...]]:
        """`node` with its references followed (a reference's sibling keywords win over what it
        points to, as 3.1 reads them), and the references passed."""
        passed: list[str] = []
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
                raise ToolSetupError(
                    f"{self.shown}: the reference {str(ref)[:200]} points outside the document "
                    "(only #/... references are followed)"
                )
            if ref in passed:
                raise ToolSetupError(f"{self.shown}: the reference {ref[:200]} refers to itself")
            if len(passed) == MAX_REF_CHAIN:
                raise ToolSetupError(
                    f"{self.shown}: references chained more than {MAX_REF_CHAIN} deep"
                )
            passed.append(ref)
            target = self._pointer(ref)
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **siblings} if siblings and isinstance(target, dict) else target
        return node, tuple(passed)

    def _pointer(self, ref: str) -> Any:
        node: Any = self.document
        for raw in ref[1:].split("/")[1:]:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ToolSetupError(f"{self.shown}: the reference {ref[:200]} points to nothing")
        return node


def read_only(reader: Reader, schema: Any) -> bool:
    """A property the service sets itself (not sent in a request)."""
    resolved = reader.follow(schema)
    return isinstance(resolved, dict) and resolved.get("readOnly") is True


class Schemas:
    """OpenAPI schemas rebuilt as JSON schemas for the model and the validator."""

    def __init__(self, reader: Reader, operation_id: str) -> None:
        self.reader = reader
        self.operation_id = operation_id
        self.parts_left = MAX_SCHEMA_PARTS

    def convert(
        self, node: Any, *, depth: int, active: frozenset[str] = frozenset()
    ) -> dict[str, JsonValue]:
        """`node` as a JSON schema that sits `depth` levels deep in the arguments (the spec's
        depth limit counts every mapping and list). `active`: the references being expanded
        above it; one that recurs is cut to its type."""
        self.parts_left -= 1
        if self.parts_left < 0:
            raise ToolSetupError(
                f"'{self.operation_id}': its schemas are too large to offer (over "
                f"{MAX_SCHEMA_PARTS} parts)"
            )
        node, refs = self.reader.chain(node)
        if not isinstance(node, dict):
            return {}  # true, false or nonsense: any value (the service still checks)
        recursive = bool(active & set(refs))
        active = active | set(refs)
        out: dict[str, JsonValue] = {}
        self._scalars(node, out)
        fits_list = depth + 1 <= MAX_PARAM_DEPTH
        fits_nested = depth + 2 <= MAX_PARAM_DEPTH
        kinds: list[JsonValue] = list(_types(node, nullable=self.reader.version_30))
        if kinds:
            out["type"] = kinds if len(kinds) > 1 and fits_list else kinds[0]
        if recursive:
            return {key: out[key] for key in ("type", "description") if key in out}
        if fits_list:
            enum = node.get("enum")
            if isinstance(enum, list) and enum and all(map(_is_scalar, enum)):
                out["enum"] = enum[:200]
        properties = node.get("properties")
        if fits_nested and isinstance(properties, dict):
            converted: dict[str, JsonValue] = {
                str(name): self.convert(part, depth=depth + 2, active=active)
                for name, part in properties.items()
                if not read_only(self.reader, part)
            }
            out["properties"] = converted
            names = node.get("required")
            if isinstance(names, list):
                kept: list[JsonValue] = [
                    name for name in names if isinstance(name, str) and name in converted
                ]
                if kept:
                    out["required"] = kept
        for key in _COMBINATIONS:
            parts = node.get(key)
            if fits_nested and isinstance(parts, list) and parts:
                out[key] = [self.convert(part, depth=depth + 2, active=active) for part in parts]
        if fits_list and "items" in node:
            out["items"] = self.convert(node["items"], depth=depth + 1, active=active)
        extra = node.get("additionalProperties")
        if isinstance(extra, bool):
            out["additionalProperties"] = extra
        elif fits_list and isinstance(extra, dict):
            out["additionalProperties"] = self.convert(extra, depth=depth + 1, active=active)
        return out

    def _scalars(self, node: dict[str, Any], out: dict[str, JsonValue]) -> None:
        description = node.get("description")
        if isinstance(description, str) and description.strip():
            out["description"] = description.strip()[:MAX_SCHEMA_DESCRIPTION]
        if isinstance(node.get("format"), str):
            out["format"] = node["format"][:100]
        pattern = node.get("pattern")
        if isinstance(pattern, str) and _compiles(pattern):
            out["pattern"] = pattern
        for key in _NUMBERS:
            if _is_number(node.get(key)):
                out[key] = node[key]
        for key in _COUNTS:
            value = node.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value
        if isinstance(node.get("uniqueItems"), bool):
            out["uniqueItems"] = node["uniqueItems"]
        for key in ("default", "const"):
            if key in node and _is_scalar(node[key]):
                out[key] = node[key]
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(key)
            if value is True and bound in out:  # 3.0: a flag on the bound
                out[key] = out.pop(bound)
            elif _is_number(value):
                out[key] = value


def _types(node: dict[str, Any], *, nullable: bool) -> list[str]:
    kind = node.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else []
    kinds = [str(k) for k in kinds if k in _TYPES]
    if nullable and node.get("nullable") is True and kinds and "null" not in kinds:
        kinds.append("null")
    return list(dict.fromkeys(kinds))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
