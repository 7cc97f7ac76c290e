"""The `tool` node: calls one of the bot's tools without the model, its arguments from the
step's params (text values are sandboxed templates over `input`, `participant` and `state`),
and leaves the result in `state[into]` (parsed JSON when the tool answers JSON) for the steps
that follow: a `template` shows it (`{{ state.order.status }}`); an `llm` step is given it as
untrusted data.

A call that does not succeed (refused, error, timeout, too large) ends the turn with the
fallback; the turn keeps the call's record either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from jinja2 import TemplateError
from pydantic import Field, JsonValue, StringConstraints

from builders.spec import BotSpec, PipelineNode
from runtime.nodes.base import NO_USAGE, NodeParams, onward, parse_params, step_error
from runtime.nodes.jinja_sandbox import SandboxedTemplate, TemplateLimitError, compile_template
from runtime.nodes.template import template_values
from runtime.pipeline import NodeResult, TurnContext
from runtime.tools.base import ToolResult

StateKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
TOOL_RESULTS = "tool_results"  # state: the `StepResult`s of the turn's tool steps, in order


@dataclass(frozen=True, slots=True)
class StepResult:
    """A tool step's result, for an `llm` step that follows (it reads them as untrusted data;
    templates see only `state[into]`)."""

    function: str
    result: ToolResult


class Params(NodeParams):
    """`tool`: the function name of one of the bot's tool operations; `arguments`: its
    arguments; `into`: the state key for the result (default: the step's id, `-` as `_`)."""

    tool: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    arguments: Annotated[dict[str, JsonValue], Field(max_length=50)] = Field(default_factory=dict)
    into: StateKey | None = None


def argument_problem(spec: BotSpec) -> str | None:
    """Checked when a draft is saved, not when a stored version is loaded (one saved before this
    check keeps running): a tool step that leaves out a required argument, or names one its
    operation does not take, would fail on every message."""
    for definition in spec.steps():
        if definition.kind not in (ToolNode.kind, "http_tool"):
            continue
        params = parse_params(Params, definition)
        found = spec.operation(params.tool)
        if found is None:
            continue  # the step's own check names it
        schema = found[1].parameters
        properties = schema.get("properties")
        takes = list(properties) if isinstance(properties, dict) else []
        required = schema.get("required")
        wanted = [str(name) for name in required] if isinstance(required, list) else []
        missing = [name for name in wanted if name not in params.arguments]
        if missing:
            return f"step '{definition.id}': arguments: {params.tool} needs {_names(missing)}"
        unknown = [name for name in params.arguments if name not in takes]
        if unknown and schema.get("additionalProperties") is False:
            known = _names(takes) if takes else "no arguments"
            return (
                f"step '{definition.id}': arguments: {params.tool} takes no {_names(unknown)}"
                f" (it takes {known})"
            )
    return None


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


@dataclass(frozen=True, slots=True)
class ToolNode:
    kind: ClassVar[str] = "tool"
    answers: ClassVar[bool] = False
    id: str
    function: str
    fixed: Mapping[str, JsonValue]
    templates: Mapping[str, SandboxedTemplate]
    typed: frozenset[str]  # arguments whose schema wants a value that is not text
    into: str
    next: str | None = None

    @classmethod
    def from_definition(cls, definition: PipelineNode, spec: BotSpec) -> ToolNode:
        params = parse_params(Params, definition)
        found = spec.operation(params.tool)
        if found is None:
            known = ", ".join(op.function for tool in spec.tools for op in tool.operations)
            raise step_error(
                definition.id,
                f"the bot has no tool '{params.tool}' (its tools: {known or 'none yet'})",
            )
        properties = found[1].parameters.get("properties")
        schemas = properties if isinstance(properties, dict) else {}
        templates: dict[str, SandboxedTemplate] = {}
        for name, value in params.arguments.items():
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                try:
                    templates[name] = compile_template(value)
                except ValueError as exc:
                    raise step_error(definition.id, f"arguments.{name}: {exc}") from None
        typed = {
            name
            for name in templates
            if isinstance(schema := schemas.get(name), dict) and schema.get("type") != "string"
        }
        return cls(
            id=definition.id,
            function=params.tool,
            fixed={k: v for k, v in params.arguments.items() if k not in templates},
            templates=templates,
            typed=frozenset(typed),
            into=params.into or definition.id.replace("-", "_"),
            next=definition.next,
        )

    @property
    def uses_memory(self) -> bool:
        return any("participant" in template.names for template in self.templates.values())

    @property
    def successors(self) -> tuple[tuple[str, str], ...]:
        return onward(self.next)

    async def run(self, ctx: TurnContext) -> NodeResult:
        if ctx.tools is None:
            return self._failed("tools are not available here")
        try:
            arguments = self._arguments(ctx)
        except (TemplateLimitError, TemplateError) as exc:
            return self._failed(str(exc))
        result, record = await ctx.tools.call(
            ctx.spec, self.function, json.dumps(arguments), team_id=ctx.team_id
        )
        ctx.tool_calls.append(record)
        if result.status != "ok":
            return self._failed(f"{self.function} {result.status}: {record.detail}")
        ctx.state[self.into] = _parsed(result.content)
        ctx.state.setdefault(TOOL_RESULTS, []).append(StepResult(self.function, result))
        return NodeResult(usage=NO_USAGE)

    def _arguments(self, ctx: TurnContext) -> dict[str, Any]:
        arguments: dict[str, Any] = dict(self.fixed)
        for name, template in self.templates.items():
            text = template.render(template_values(template, ctx)).strip()
            arguments[name] = _typed(text) if name in self.typed else text
        return arguments

    def _failed(self, reason: str) -> NodeResult:
        return NodeResult(usage=NO_USAGE, error=f"tool: step '{self.id}': {reason}"[:500])


def _typed(text: str) -> Any:
    """A rendered value for an argument that is not text: the JSON it spells (a number, true),
    else the text as it is (the gateway's schema check then names the problem)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parsed(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content
