"""What changed between two specs, field by field; long text fields as unified diff lines, the
pipeline as step-by-step lines (a step added or removed, a setting changed, a link moved)."""

from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from builders.flow import describe, edges_of
from builders.spec import BotSpec, PipelineNode, ToolOperation

_TEXT_FIELDS = ("prompt", "greeting", "fallback", "description")


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    lines: tuple[str, ...] = ()


def diff_specs(before: BotSpec, after: BotSpec) -> list[FieldChange]:
    old = before.model_dump(mode="json")
    new = after.model_dump(mode="json")
    changes = []
    for name in BotSpec.model_fields:
        if old.get(name) == new.get(name):  # a field left out when unset (budget) is None
            continue
        lines: tuple[str, ...] = ()
        if name in _TEXT_FIELDS:
            diff = difflib.unified_diff(
                old[name].splitlines(), new[name].splitlines(), lineterm="", n=1
            )
            # Skip the two file headers by position: a removed "---" or "-- x" line of the
            # text itself also starts with "---" (and an added "++ x" with "+++").
            lines = tuple(itertools.islice(diff, 2, None))
        if name == "pipeline":
            lines = pipeline_lines(before, after)
        if name == "tools":
            lines = tool_lines(before, after)
        changes.append(
            FieldChange(field=name, before=old.get(name), after=new.get(name), lines=lines)
        )
    return changes


def tool_lines(before: BotSpec, after: BotSpec) -> tuple[str, ...]:
    """The tools' changes, one line each: `+` added, `-` removed, `~` changed (its operations,
    what it may change, its address or credentials)."""
    old = {tool.name: tool for tool in before.tools}
    new = {tool.name: tool for tool in after.tools}
    lines = []
    for name, tool in new.items():
        functions = ", ".join(_operation(op) for op in tool.operations)
        if name not in old:
            lines.append(f"+ tool `{name}` ({tool.kind} {tool.url}): {functions}")
        elif old[name] != tool:
            lines.append(f"~ tool `{name}`: {functions}")
    lines += [f"- tool `{name}`" for name in old if name not in new]
    return tuple(lines)


def _operation(operation: ToolOperation) -> str:
    if not operation.changes:
        return operation.function
    return f"{operation.function} (changes{'' if operation.allowed else ', not allowed'})"


def pipeline_lines(before: BotSpec, after: BotSpec) -> tuple[str, ...]:
    """The flow's changes, one line each: `+` a step added, `-` removed, `~` changed (a setting,
    where it goes on to, a router's routes and default). A plain bot's implicit flow counts as
    its steps, so writing it out changes nothing by itself."""
    old, new = before.steps(), after.steps()
    lines: list[str] = []
    if old[0].id != new[0].id:
        lines.append(f"~ starts at `{new[0].id}` (was `{old[0].id}`)")
    old_by_id = {s.id: s for s in old}
    new_ids = {s.id for s in new}
    for step in new:
        was = old_by_id.get(step.id)
        if was is None:
            lines.append(f"+ `{step.id}` {step.kind}{describe(step)}{_way_on(step)}")
        elif was.kind != step.kind:
            lines.append(f"~ `{step.id}` is now {step.kind}{describe(step)} (was {was.kind})")
        else:
            lines += [f"~ `{step.id}` {change}" for change in _step_changes(was, step)]
    lines += [f"- `{s.id}` {s.kind}" for s in old if s.id not in new_ids]
    if not lines and before.pipeline != after.pipeline:
        lines.append("~ the same steps, now written out" if after.pipeline else "~ back to plain")
    return tuple(lines)


def _way_on(step: PipelineNode) -> str:
    ways = ", ".join(
        f"{edge.label} → `{edge.target}`" if edge.label else f"→ `{edge.target}`"
        for edge in edges_of(step)
    )
    return f" {ways}" if ways else ""


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    flat = " ".join(text.split())
    flat = flat if len(flat) <= 60 else flat[:59] + "…"
    return f'"{flat}"' if isinstance(value, str) else flat


def _step_changes(was: PipelineNode, step: PipelineNode) -> list[str]:
    changes: list[str] = []
    if was.next != step.next:
        changes.append(f"next: {_step_ref(was.next)} → {_step_ref(step.next)}")
    keys = [*was.params, *(k for k in step.params if k not in was.params)]
    for key in keys:
        old, new = was.params.get(key), step.params.get(key)
        if old == new:
            continue
        if key == "routes" and step.kind == "router":
            changes += _route_changes(was, step)
        elif key == "default" and step.kind == "router":
            changes.append(f"default: {_step_ref(old)} → {_step_ref(new)}")
        else:
            changes.append(f"{key}: {_shown(old)} → {_shown(new)}")
    return changes


def _step_ref(value: Any) -> str:
    return f"`{value}`" if value else "—"


def _route_changes(was: PipelineNode, step: PipelineNode) -> list[str]:
    old = [e for e in edges_of(was) if e.label != "default"]
    new = [e for e in edges_of(step) if e.label != "default"]
    changes = [f"route {e.label} → `{e.target}` added" for e in new if e not in old]
    changes += [f"route {e.label} → `{e.target}` removed" for e in old if e not in new]
    if not changes:  # the same routes in another order
        changes.append("routes reordered: " + ", ".join(e.label for e in new))
    return changes
