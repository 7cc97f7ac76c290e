"""The `template` node: answers with a sandboxed Jinja2 template's text.

The template sees `participant` (what the bot remembers about the person), `state` (what earlier
steps of the turn left: `state.route`, `state.extracted`, `state.missing`) and `input` (the
person's text), as plain copies; a value not known shows as nothing, true/false as yes/no. It is
compiled and checked when the spec is saved (see `runtime.nodes.jinja_sandbox`); a render that
breaks a bound is the turn's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from jinja2 import TemplateError
from pydantic import StringConstraints

from builders.spec import MAX_PARAM_CHARS, BotSpec, PipelineNode
from runtime.nodes.base import NO_USAGE, NodeParams, onward, parse_params, step_error
from runtime.nodes.jinja_sandbox import SandboxedTemplate, TemplateLimitError, compile_template
from runtime.pipeline import NodeResult, TurnContext


class Params(NodeParams):
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PARAM_CHARS)]


@dataclass(frozen=True, slots=True)
class TemplateNode:
    kind: ClassVar[str] = "template"
    answers: ClassVar[bool] = True
    id: str
    template: SandboxedTemplate
    next: str | None = None

    @classmethod
    def from_definition(cls, definition: PipelineNode, spec: BotSpec) -> TemplateNode:
        params = parse_params(Params, definition)
        try:
            template = compile_template(params.text)
        except ValueError as exc:
            raise step_error(definition.id, str(exc)) from None
        return cls(id=definition.id, template=template, next=definition.next)

    @property
    def uses_memory(self) -> bool:
        return "participant" in self.template.names

    @property
    def successors(self) -> tuple[tuple[str, str], ...]:
        return onward(self.next)

    async def run(self, ctx: TurnContext) -> NodeResult:
        try:
            text = self.template.render(template_values(self.template, ctx)).strip()
        except (TemplateLimitError, TemplateError) as exc:  # SecurityError is a TemplateError
            return self._failed(str(exc))
        except Exception as exc:  # the builder's template failed: the turn's error, not a crash
            return self._failed(f"{type(exc).__name__}: {exc}")
        return NodeResult(reply=text, usage=NO_USAGE)

    def _failed(self, reason: str) -> NodeResult:
        return NodeResult(usage=NO_USAGE, error=f"template: step '{self.id}': {reason}"[:500])


def template_values(template: SandboxedTemplate, ctx: TurnContext) -> dict[str, Any]:
    """What a template sees of the turn (only the names it uses are copied)."""
    values: dict[str, Any] = {"input": ctx.text}
    if "participant" in template.names:
        values["participant"] = dict(ctx.participant.values)
    if "state" in template.names:
        values["state"] = plain(ctx.state)
    return values


def plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the JSON-like values of `state`; others (such as passages) are left out."""
    return {key: copied for key, value in state.items() if (copied := _copy(value)) is not _SKIP}


_SKIP = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """A copy of a JSON-like value, or `_SKIP` when it holds anything else."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, dict):
        mapping = {}
        for key, item in value.items():
            if (copied := _copy(item)) is _SKIP:
                return _SKIP
            mapping[str(key)] = copied
        return mapping
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            if (copied := _copy(item)) is _SKIP:
                return _SKIP
            items.append(copied)
        return items
    return _SKIP
