"""The Jinja2 sandbox that builders' templates run in.

A template sees only `participant`, `state` and `input`, and renders on the event loop, so it is
bounded both when it is saved and when it runs:

- at save, names other than those three, attributes or keys starting with '_', macros, includes,
  recursive loops, unknown filters and calls other than `range()`, `dict()` and a few text
  methods are refused, with the reason;
- at run time, every loop step, call, filter and intercepted operator checks a time limit
  (`RENDER_TIME_S`), no operation may make a value over `MAX_VALUE_CHARS` characters (or a number
  over `MAX_NUMBER_BITS` bits), the output is cut off at `MAX_OUTPUT_CHARS`, and anything reached
  outside the sandbox raises `SecurityError` (the turn's error, never a crash).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

NAMES = frozenset({"participant", "state", "input"})
MAX_OUTPUT_CHARS = 4000
MAX_VALUE_CHARS = 20_000  # text, list or mapping made by one operation
MAX_NUMBER_BITS = 4096
MAX_RANGE = 1000
RENDER_TIME_S = 0.05

# Filters that cannot blow a value up (or are checked before they do: join, replace).
_FILTERS = (
    *("abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first"),
    *("float", "groupby", "int", "items", "join", "last", "length", "list", "lower", "map"),
    *("max", "min", "reject", "rejectattr", "replace", "reverse", "round", "select"),
    *("selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim"),
    *("truncate", "unique", "upper", "urlencode", "wordcount"),
)
# The only methods a template may call (text and mapping readers, and `loop.cycle`).
METHODS = frozenset(
    {
        *("capitalize", "casefold", "count", "endswith", "find", "get", "isalnum", "isalpha"),
        *("isdigit", "islower", "isnumeric", "isspace", "isupper", "items", "keys", "lower"),
        *("lstrip", "partition", "removeprefix", "removesuffix", "rfind", "rpartition"),
        *("rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase"),
        *("title", "upper", "values", "cycle", "changed"),
    }
)
_EACH = "_sandbox_each"  # wraps every loop's iterable (the loop steps check the time limit)
_CONCAT = "_sandbox_concat"  # replaces `~` (its result is bounded)

_SIZED = (str, list, tuple)
_NESTED = (str, list, tuple, dict)
_DEADLINE: ContextVar[float] = ContextVar("template_deadline", default=math.inf)


class TemplateLimitError(Exception):
    """A render went over one of the sandbox's bounds; the message says which."""


def _tick() -> None:
    if time.perf_counter() > _DEADLINE.get():
        raise TemplateLimitError(f"the template took over {RENDER_TIME_S * 1000:g} ms")


def _weight(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """How big `value` is, nested values included (a string's characters, one per other item),
    counted only up to just past `limit`: `[[1] * 20000] * 2000` is short on the outside and
    40 million items inside, which one `str()` would build in a single call."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, list | tuple):
        return 1
    total = 0
    for item in value:
        total += _weight(item, limit - total) if isinstance(item, _NESTED) else 1
        if total > limit:
            break
    return total


def _bounded(value: Any) -> Any:
    if isinstance(value, _NESTED) and _weight(value) > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"the template made a value over {MAX_VALUE_CHARS} long")
    if isinstance(value, int) and value.bit_length() > MAX_NUMBER_BITS:
        raise TemplateLimitError("the template made a number too large")
    return value


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse an operation whose result would be too large, before it is computed."""
    if operator == "%" and isinstance(left, str):
        raise SecurityError("'%' formatting is not available in a template: use filters")
    if operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        _bounded_length(_weight(left) + _weight(right))
    elif operator == "*" and isinstance(left, _SIZED) and isinstance(right, int):
        _bounded_length(_weight(left) * right)
    elif operator == "*" and isinstance(right, _SIZED) and isinstance(left, int):
        _bounded_length(_weight(right) * left)
    elif operator in ("*", "**") and isinstance(left, int) and isinstance(right, int):
        if operator == "*":
            bits = left.bit_length() + right.bit_length()
        else:
            bits = left.bit_length() * right if right > 0 and abs(left) > 1 else 0
        if bits > MAX_NUMBER_BITS:
            raise TemplateLimitError("the template made a number too large")


def _bounded_length(length: int) -> None:
    if length > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"the template made a value over {MAX_VALUE_CHARS} long")


def _each(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


def _concat(*values: Any) -> str:
    _tick()
    parts = [str(value) for value in values]
    _bounded_length(sum(map(len, parts)))
    return "".join(parts)


def _range(*args: int) -> range:
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = MAX_RANGE + 1
    if count > MAX_RANGE:
        raise TemplateLimitError(f"range() gives at most {MAX_RANGE} numbers in a template")
    return numbers


def _checked_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that checks the time limit, the size of what it makes and, for `join` and
    `replace`, the size of what it would make before making it. `functools.wraps` keeps the
    marker Jinja reads to pass the context."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name == "replace":
            _check_replace(args, kwargs)
        elif name == "join":
            args = _check_join(args, kwargs)
        return _bounded(function(*args, **kwargs))

    return checked


def _check_replace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    # do_replace(eval_ctx, s, old, new, count=None)
    values = [*args[1:4]]
    text, old, new = (str(values[i]) if len(values) > i else "" for i in range(3))
    count = kwargs.get("count", args[4] if len(args) > 4 else None)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _bounded_length(len(text) + found * max(0, len(new) - len(old)))


def _check_join(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # do_join(eval_ctx, value, d="", attribute=None): the items are read once, here
    items = list(args[1]) if len(args) > 1 else []
    separator = str(kwargs.get("d", args[2] if len(args) > 2 else ""))
    length = sum(len(str(item)) for item in items) + len(separator) * max(0, len(items) - 1)
    _bounded_length(length)
    return (args[0], items, *args[2:])


def _shown(value: Any) -> Any:
    """How `{{ value }}` shows: nothing for None, yes/no for true/false (as prompts show them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return isinstance(value, Undefined) or not callable(value) or attr in METHODS

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"'{attribute}' of {type(obj).__name__} is not available")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        return None  # `str.format` is not one of the methods a template may call

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_binop(operator, left, right)
        return _bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        return _bounded(super().call(__context, __obj, *args, **kwargs))


def _environment() -> _Sandbox:
    env = _Sandbox(
        autoescape=False,  # chat text: each channel escapes what it sends
        undefined=ChainableUndefined,  # a value not remembered (yet) shows as nothing
        finalize=_shown,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters = {name: _checked_filter(name, env.filters[name]) for name in _FILTERS}
    env.globals = {"range": _range, "dict": dict, _EACH: _each, _CONCAT: _concat}
    return env


ENV = _environment()


@dataclass(frozen=True, slots=True)
class SandboxedTemplate:
    template: Template
    names: frozenset[str]  # which of `NAMES` it uses

    def render(self, values: Mapping[str, Any]) -> str:
        """The text, or `TemplateLimitError`, `SecurityError` or whatever the template raised."""
        token = _DEADLINE.set(time.perf_counter() + RENDER_TIME_S)
        try:
            parts: list[str] = []
            size = 0
            for part in self.template.generate(values):
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateLimitError(
                        f"the template's text is over {MAX_OUTPUT_CHARS} characters"
                    )
                parts.append(part)
            return "".join(parts)
        finally:
            _DEADLINE.reset(token)


def compile_template(text: str) -> SandboxedTemplate:
    """The template ready to render, or `ValueError` with a one-line reason."""
    try:
        tree = ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(
            f"the template does not parse (line {exc.lineno}: {exc.message})"
        ) from None
    _check(tree)
    try:
        names = meta.find_undeclared_variables(tree)
        unknown = sorted(names - NAMES)
        if unknown:
            raise ValueError(
                f"the template uses '{unknown[0]}': only participant, state and input are available"
            )
        _Bounds().visit(tree)
        code = ENV.compile(tree)
    except TemplateError as exc:
        raise ValueError(f"the template does not compile ({exc.message})") from None
    template = ENV.template_class.from_code(ENV, code, ENV.make_globals(None))
    return SandboxedTemplate(template=template, names=frozenset(names))


_REFUSED: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros are not available in a template",
    nodes.CallBlock: "call blocks are not available in a template",
    nodes.Extends: "a template cannot extend another",
    nodes.Include: "a template cannot include another",
    nodes.Import: "a template cannot import another",
    nodes.FromImport: "a template cannot import another",
}


def _check(tree: nodes.Template) -> None:
    """Refuse what the sandbox would refuse at run time, and what could run away."""
    for node in tree.find_all(nodes.Node):
        problem = _problem(node)
        if problem:
            raise ValueError(f"{problem} (line {node.lineno})")


def _problem(node: nodes.Node) -> str | None:
    for kind, problem in _REFUSED.items():
        if isinstance(node, kind):
            return problem
    if isinstance(node, nodes.Name) and (node.name.startswith("_") or node.name == "self"):
        return f"the name '{node.name}' is not available in a template"
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        return f"'{node.attr}' is not available in a template"
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and node.arg.value.startswith("_")
    ):
        return f"'{node.arg.value}' is not available in a template"
    if isinstance(node, nodes.For) and node.recursive:
        return "recursive loops are not available in a template"
    if isinstance(node, nodes.Filter) and node.name not in ENV.filters:
        return f"the filter '{node.name}' is not available in a template"
    if isinstance(node, nodes.Test) and node.name not in ENV.tests:
        return f"the test '{node.name}' is not available in a template"
    if isinstance(node, nodes.Call):
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name in ("range", "dict"):
            return None
        if isinstance(callee, nodes.Getattr) and callee.attr in METHODS:
            return None
        return "a template can call only range(), dict() and text methods such as lower()"
    return None


class _Bounds(NodeTransformer):
    """Routes every loop through `_each` and every `~` through `_concat`."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call(_EACH, [node.iter], node)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call(_CONCAT, list(node.nodes), node)


def _call(name: str, args: list[nodes.Node], where: nodes.Node) -> nodes.Call:
    call = nodes.Call(nodes.Name(name, "load"), args, [], None, None)
    call.set_lineno(where.lineno)
    call.set_environment(ENV)
    return call
