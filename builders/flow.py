"""Typed edits of a bot's flow (its `pipeline`): each returns a new spec whose graph stays whole.

Pure: no I/O. A plain bot (empty pipeline) first gets its implicit flow written out (`retrieve ->
llm` with knowledge, else `llm`). Every edit then keeps the graph runnable by itself: each step is
reachable from the entry (the first step), and a step with no way on answers. Where a new step
goes, when no place is named:
- a router goes first, and messages none of its routes match go on to the old first step;
- any other step goes just before the step that answers at the end of the main line (the line
  from the entry through each step's `next` and each router's default).
`after STEP` puts a step between STEP and what followed it. A route goes into the first router
on the main line that reads the message (keyword, regex or intent), else into a new router put
first.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue, ValidationError

from builders.spec import MAX_NODES, BotSpec, PipelineNode
from builders.validation import human_problems

ANSWERING = frozenset({"llm", "template", "bot", "handoff"})  # the kinds whose step answers
PEOPLE_STEP = "human"  # the handoff step `/route … to human` adds
END = "end"  # `link STEP end`: STEP goes on to nothing (it answers last)
_FORMATS = {"email": "email", "phone": "phone"}  # fields the offline model extracts by format
_FIELD_WORDS = {"email": "email address", "phone": "phone number"}
_DEFAULT_ROUTER = "router"
_BY_MESSAGE = ("keyword", "regex", "intent")  # route kinds that read the message's text
_FIELD = re.compile(r"[a-z][a-z0-9_]{0,29}")


class FlowError(ValueError):
    """An edit that cannot be made; the message is one line a builder can act on."""


@dataclass(frozen=True, slots=True)
class FlowEdit:
    """The edited spec and one sentence saying what changed (and where the step went)."""

    spec: BotSpec
    said: str


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str  # "" for `next`, "default", or a route's condition


@dataclass(frozen=True, slots=True)
class Outline:
    """A flow ready to be shown: its steps in layer order, edges, and each step's depth (its
    distance from the entry). `implicit`: the bot has no pipeline of its own yet."""

    bot: str
    steps: tuple[PipelineNode, ...]
    edges: tuple[Edge, ...]
    depth: Mapping[str, int]
    implicit: bool

    @property
    def entry(self) -> str:
        return self.steps[0].id


# -- reading a flow ---------------------------------------------------------------------------


def answers(step: PipelineNode) -> bool:
    return step.kind in ANSWERING


def _routes(step: PipelineNode) -> list[dict[str, Any]]:
    routes = step.params.get("routes")
    return [dict(r) for r in routes if isinstance(r, dict)] if isinstance(routes, list) else []


def _default(step: PipelineNode) -> str | None:
    default = step.params.get("default")
    return default if isinstance(default, str) else None


def condition(route: Mapping[str, Any]) -> str:
    """A route's condition in words: `"refund"`, `/order\\s+\\d+/`, `intent "billing"`,
    `email is unset`, `plan = "pro"`."""
    if "keyword" in route:
        return f'"{route["keyword"]}"'
    if "regex" in route:
        return f"/{route['regex']}/"
    if "intent" in route:
        return f'intent "{route["intent"]}"'
    if "participant" in route:
        if "is" in route:
            return f"{route['participant']} is {route['is']}"
        return f'{route["participant"]} = "{route.get("equals", "")}"'
    return "?"


def edges_of(step: PipelineNode) -> list[Edge]:
    """Where a step may go on to: a router's routes then its default; another step's `next`."""
    if step.kind == "router":
        found = [Edge(step.id, str(r["to"]), condition(r)) for r in _routes(step) if r.get("to")]
        default = _default(step)
        if default:
            found.append(Edge(step.id, default, "default"))
        return found
    return [Edge(step.id, step.next, "")] if step.next else []


def _depths(steps: list[PipelineNode]) -> dict[str, int]:
    """Each reachable step's distance from the entry (breadth first)."""
    by_id = {s.id: s for s in steps}
    depth = {steps[0].id: 0}
    queue = deque([steps[0].id])
    while queue:
        current = queue.popleft()
        for edge in edges_of(by_id[current]):
            if edge.target in by_id and edge.target not in depth:
                depth[edge.target] = depth[current] + 1
                queue.append(edge.target)
    return depth


def outline(spec: BotSpec) -> Outline:
    steps = spec.steps()
    depth = _depths(steps)
    order = {s.id: n for n, s in enumerate(steps)}
    ordered = sorted(steps, key=lambda s: (depth.get(s.id, len(steps)), order[s.id]))
    return Outline(
        bot=spec.name,
        steps=tuple(ordered),
        edges=tuple(e for s in ordered for e in edges_of(s)),
        depth=depth,
        implicit=not spec.pipeline,
    )


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def describe(step: PipelineNode) -> str:
    """What a step does, in a few words after its kind (empty when it has nothing to say)."""
    params = step.params
    if step.kind == "template":
        return f' "{_short(str(params.get("text", "")), 60)}"'
    if step.kind == "bot":
        return f" asks {params.get('bot', '?')}"
    if step.kind == "extract":
        names = field_names(params.get("fields"))
        return (" " + ", ".join(names)) if names else ""
    if step.kind == "llm" and params.get("prompt"):
        return f' prompt "{_short(str(params["prompt"]), 50)}"'
    shown = [
        f"{k}={_short(str(v), 30)}" for k, v in params.items() if k not in ("routes", "default")
    ]
    return (" " + " ".join(shown)) if shown else ""


def field_names(fields: Any) -> list[str]:
    if isinstance(fields, dict) and isinstance(fields.get("properties"), dict):
        return [str(name) for name in fields["properties"]]
    return []


def outline_text(spec: BotSpec) -> str:
    """The flow as lines of light markup, one per step in layer order; a router's branches are
    indented below it, its default last. See the README's "Flows" section for an example."""
    view = outline(spec)
    count = f"{len(view.steps)} step" + ("" if len(view.steps) == 1 else "s")
    if view.implicit:
        header = f"*{spec.name}* runs the plain flow ({count}; no flow of its own yet):"
    else:
        header = f"*{spec.name}* flow ({count}, starting at `{view.entry}`):"
    lines = [header]
    for step in view.steps:
        line = f"`{step.id}` {step.kind}{describe(step)}"
        if answers(step):
            line += " (answers)"
        if step.kind != "router" and step.next:
            line += f" → `{step.next}`"
        lines.append(line)
        if step.kind == "router":
            lines += [f"    {edge.label} → `{edge.target}`" for edge in edges_of(step)]
    return "\n".join(lines)


# -- checking a flow --------------------------------------------------------------------------


def _problem(steps: list[PipelineNode]) -> str | None:
    """Why these steps would not run (the graph rules an edit can break), or None."""
    by_id = {s.id: s for s in steps}
    for step in steps:
        for edge in edges_of(step):
            if edge.target not in by_id:
                return f"`{step.id}` would lead to `{edge.target}`, which is no step"
        if step.kind == "router" and not _default(step):
            return f"router `{step.id}` needs a default step (default=STEP)"
        if step.kind == "router" and not _routes(step):
            return f"router `{step.id}` needs at least one route (/route … to STEP adds one)"
        if step.kind != "router" and not step.next and not answers(step):
            return (
                f"`{step.id}` ({step.kind}) would answer nothing and lead nowhere "
                f"(/flow link {step.id} STEP gives it a way on)"
            )
    if not any(answers(s) for s in steps):
        return "no step would answer"
    depth = _depths(steps)
    cut_off = [s.id for s in steps if s.id not in depth]
    if cut_off:
        names = ", ".join(f"`{name}`" for name in cut_off)
        them = "it" if len(cut_off) == 1 else "them"
        return (
            f"nothing would lead to {names} any more: remove {them} first, or /flow link "
            f"a step to {them}"
        )
    if len(steps) > MAX_NODES:
        return f"a flow has at most {MAX_NODES} steps"
    return None


def _with(spec: BotSpec, steps: list[PipelineNode], said: str) -> FlowEdit:
    problem = _problem(steps)
    if problem:
        raise FlowError(problem)
    data = spec.model_dump(mode="json")
    data["pipeline"] = [s.model_dump(mode="json") for s in steps]
    try:
        return FlowEdit(BotSpec.model_validate(data), said)
    except ValidationError as exc:
        raise FlowError("; ".join(human_problems(exc))) from None


def _step(
    kind: str, step_id: str, params: Mapping[str, JsonValue], next: str | None = None
) -> PipelineNode:
    data = {"id": step_id, "kind": kind, "params": dict(params), "next": next}
    try:
        return PipelineNode.model_validate(data)
    except ValidationError as exc:
        if "id" in {str(e["loc"][0]) for e in exc.errors()}:
            raise FlowError(
                f"'{step_id[:40]}' is not a step id: use up to 40 lowercase letters, digits, "
                "'-' and '_', starting with a letter"
            ) from None
        raise FlowError("; ".join(human_problems(exc))) from None


def _find(steps: list[PipelineNode], step_id: str) -> PipelineNode:
    for step in steps:
        if step.id == step_id:
            return step
    names = ", ".join(f"`{s.id}`" for s in steps)
    raise FlowError(f"there is no step `{step_id}`; the steps are {names}")


def _replace(steps: list[PipelineNode], *changed: PipelineNode) -> list[PipelineNode]:
    by_id = {s.id: s for s in changed}
    return [by_id.get(s.id, s) for s in steps]


def _params(step: PipelineNode, **changes: JsonValue) -> PipelineNode:
    return step.model_copy(update={"params": {**step.params, **changes}})


def _main_line(steps: list[PipelineNode]) -> list[PipelineNode]:
    """From the entry through each step's `next` and each router's default, until it ends."""
    by_id = {s.id: s for s in steps}
    line: list[PipelineNode] = []
    current: str | None = steps[0].id
    while current in by_id and all(s.id != current for s in line):
        step = by_id[current]
        line.append(step)
        current = _default(step) if step.kind == "router" else step.next
    return line


def _point(step: PipelineNode, old: str, new: str) -> PipelineNode:
    """`step` going on to `new` wherever its main-line way on (`next`, or a router's default)
    named `old`."""
    if step.kind == "router":
        return _params(step, default=new) if _default(step) == old else step
    return step.model_copy(update={"next": new}) if step.next == old else step


def _unique(step_id: str, taken: Iterable[str]) -> str:
    used = set(taken)
    candidate, n = step_id, 2
    while candidate in used:
        suffix = f"-{n}"
        candidate, n = step_id[: 40 - len(suffix)] + suffix, n + 1
    return candidate


# -- params as a builder types them ---------------------------------------------------------


def field_schema(names: Iterable[str]) -> dict[str, JsonValue]:
    """The `extract` step's fields from their names; email and phone carry their format (what
    the offline model extracts by pattern)."""
    properties: dict[str, JsonValue] = {}
    for name in names:
        field: dict[str, JsonValue] = {"type": "string"}
        if name in _FORMATS:
            field["format"] = _FORMATS[name]
        field["description"] = f"the person's {_FIELD_WORDS.get(name, name.replace('_', ' '))}"
        properties[name] = field
    return {"type": "object", "properties": properties}


def normalise(kind: str, params: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """Shorthands a builder types, in the contract's shape: an extract's `fields=email,phone`
    (or a list of names) becomes its JSON schema."""
    out = dict(params)
    fields = out.get("fields")
    if kind == "extract" and isinstance(fields, str | list):
        names = fields.split(",") if isinstance(fields, str) else [str(f) for f in fields]
        out["fields"] = field_schema(n.strip() for n in names if n.strip())
    return out


# -- edits ------------------------------------------------------------------------------------


def add_step(
    spec: BotSpec,
    kind: str,
    step_id: str,
    params: Mapping[str, JsonValue] | None = None,
    *,
    after: str | None = None,
) -> FlowEdit:
    """A new step, placed as the module docstring says (or after `after`)."""
    steps = spec.steps()
    if any(s.id == step_id for s in steps):
        raise FlowError(f"there already is a step `{step_id}`: /flow set {step_id} changes it")
    given = normalise(kind, params or {})
    if kind == "router" and not given.get("routes"):
        raise FlowError(
            'a router needs a route: /route "KEYWORD" to STEP adds one (and a router at the '
            'start when there is none), or give routes=[{"keyword": "...", "to": "STEP"}]'
        )
    if after is not None:
        return _add_after(spec, steps, _find(steps, after), kind, step_id, given)
    if kind == "router":
        old = steps[0].id
        router = _step(kind, step_id, {"routes": [], "default": old, **given})
        said = (
            f"Added router `{step_id}` at the start: messages none of its routes match go on to "
            f"`{_default(router)}`. Give it routes with /route."
        )
        return _with(spec, [router, *steps], said)
    line = _main_line(steps)
    end = next((s for s in reversed(line) if answers(s)), line[-1])
    new = _step(kind, step_id, given, next=end.id)
    before = line[line.index(end) - 1] if line.index(end) > 0 else None
    if before is None:  # the end step is the entry: the new step comes first
        edited = [new, *steps]
    else:
        edited = [*_replace(steps, _point(before, end.id, step_id)), new]
    said = f"Added {kind} `{step_id}` just before `{end.id}`, the step that answers at the end."
    if answers(new):
        said += (
            f" Both answer; to answer only some messages with `{step_id}`, "
            f'/route "WORD" to {step_id}.'
        )
    return _with(spec, edited, said)


def _add_after(
    spec: BotSpec,
    steps: list[PipelineNode],
    previous: PipelineNode,
    kind: str,
    step_id: str,
    given: dict[str, JsonValue],
) -> FlowEdit:
    if previous.kind == "router":
        raise FlowError(
            f"`{previous.id}` is a router: its routes and default say where messages go "
            f"(/route … to {step_id}, or /flow set {previous.id} default={step_id})"
        )
    following = previous.next
    if kind == "router":
        if following is None and "default" not in given:
            raise FlowError(
                f"`{previous.id}` ends the flow: give the router a default step (default=STEP)"
            )
        new = _step(kind, step_id, {"routes": [], "default": following, **given})
    else:
        if following is None and kind not in ANSWERING:
            raise FlowError(
                f"`{previous.id}` ends the flow and a {kind} step answers nothing: put it "
                f"before a step that answers (leave out `after`)"
            )
        new = _step(kind, step_id, given, next=following)
    linked = previous.model_copy(update={"next": step_id})
    where = f"between `{previous.id}` and `{following}`" if following else f"after `{previous.id}`"
    return _with(spec, [*_replace(steps, linked), new], f"Added {kind} `{step_id}` {where}.")


def set_params(spec: BotSpec, step_id: str, params: Mapping[str, JsonValue | None]) -> FlowEdit:
    """Change some of a step's params; a None value removes that param."""
    steps = spec.steps()
    step = _find(steps, step_id)
    if not params:
        raise FlowError("say what to change: key=value after the step's id")
    merged: dict[str, JsonValue] = {**step.params}
    for key, value in params.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    changed = _step(step.kind, step.id, normalise(step.kind, merged), next=step.next)
    keys = ", ".join(params)
    return _with(spec, _replace(steps, changed), f"Changed {keys} of `{step_id}`.")


def link(spec: BotSpec, step_id: str, target: str) -> FlowEdit:
    """Make a step go on to `target` (`end`: to nothing; the step then answers last)."""
    steps = spec.steps()
    step = _find(steps, step_id)
    if step.kind == "router":
        raise FlowError(
            f"`{step_id}` is a router: its routes and default say where messages go "
            f"(/route … to STEP, or /flow set {step_id} default=STEP)"
        )
    ids = {s.id for s in steps}
    following = None if target == END and END not in ids else target
    if following is not None:
        _find(steps, following)
        if following == step_id:
            raise FlowError(f"`{step_id}` cannot go on to itself")
    linked = step.model_copy(update={"next": following})
    said = f"`{step_id}` now goes on to `{following}`." if following else f"`{step_id}` now ends."
    return _with(spec, _replace(steps, linked), said)


def remove_step(spec: BotSpec, step_id: str) -> FlowEdit:
    """Remove a step: what led to it goes on to where it went (a router: to its default); a
    route to a step that ended the flow goes away with it, and a router left with no route
    goes too."""
    steps = spec.steps()
    step = _find(steps, step_id)
    if answers(step) and not any(answers(s) for s in steps if s.id != step_id):
        raise FlowError(f"`{step_id}` is the last step that answers: add another one first")
    edited = _without(steps, step)
    routeless = [s for s in edited if s.kind == "router" and not _routes(s)]
    for router in routeless:
        edited = _without(edited, router)
    said = f"Removed `{step_id}`."
    if routeless:
        names = ", ".join(f"`{r.id}`" for r in routeless)
        said += f" Router {names} had no other route, so it went too."
    return _with(spec, edited, said)


def _without(steps: list[PipelineNode], step: PipelineNode) -> list[PipelineNode]:
    step_id = step.id
    following = _default(step) if step.kind == "router" else step.next
    edited: list[PipelineNode] = []
    for other in steps:
        if other.id == step_id:
            continue
        if other.kind == "router":
            other = _without_target(other, step_id, following)
        elif other.next == step_id:
            other = other.model_copy(update={"next": following})
        edited.append(other)
    if steps[0].id == step_id:  # the entry goes: where it went comes first
        if following is None:
            raise FlowError(f"`{step_id}` is the whole flow; nothing would be left")
        edited.sort(key=lambda s: s.id != following)
    return edited


def _without_target(router: PipelineNode, gone: str, following: str | None) -> PipelineNode:
    if _default(router) == gone:
        if following is None:
            raise FlowError(
                f"`{gone}` is where router `{router.id}` sends what no route matches: "
                f"give it another default first (/flow set {router.id} default=STEP)"
            )
        router = _params(router, default=following)
    routes: list[JsonValue] = []
    for route in _routes(router):
        if route.get("to") == gone:
            if following is None:
                continue
            route["to"] = following
        routes.append(route)
    return _params(router, routes=routes)


def bot_step_id(bot: str, taken: Iterable[str]) -> str:
    """The id of a step asking another bot: the bot's name (made a valid id when it starts with
    a digit), unique among `taken`."""
    base = bot if bot[:1].isalpha() else f"ask-{bot}"[:40]
    return _unique(base, taken)


def add_route(
    spec: BotSpec,
    match: Mapping[str, JsonValue],
    to: str | None = None,
    *,
    ask_bot: str | None = None,
    router: str | None = None,
    people: bool = False,
) -> FlowEdit:
    """Send the messages `match` matches (`{"keyword": ...}`, `{"regex": ...}`, `{"intent": ...}`
    or `{"participant": KEY, "is"|"equals": ...}`) to step `to`, or to a `bot` step asking
    `ask_bot` (created unless one asks that bot already). The router is `router`, else the first
    one on the main line that routes by the message's text, else a new one put at the start (its
    default: the old first step). A step that answers and went on to another leaves that line:
    it then answers only what is routed to it. `people`: to the flow's handoff step (one is
    added, `human`, when it has none), which hands the conversation to people of the team."""
    steps = spec.steps()
    said: list[str] = []
    if people:
        handing = next((s for s in steps if s.kind == "handoff"), None)
        if handing is None:
            handing = _step("handoff", _unique(PEOPLE_STEP, (s.id for s in steps)), {})
            steps.append(handing)
            said.append(f"Added handoff step `{handing.id}` (it hands the conversation over).")
        to = handing.id
    if ask_bot == spec.name:
        raise FlowError(f"{spec.name} cannot route messages to itself")
    if ask_bot is not None:
        asking = next(
            (s for s in steps if s.kind == "bot" and s.params.get("bot") == ask_bot), None
        )
        if asking is None:
            asking = _step("bot", bot_step_id(ask_bot, (s.id for s in steps)), {"bot": ask_bot})
            steps.append(asking)
            said.append(f"Added bot step `{asking.id}` (it asks {ask_bot}).")
        to = asking.id
    if to is None:
        raise FlowError("say where the messages go: a step, or another bot of the team")
    target = _find(steps, to)
    if isinstance(match.get("regex"), str):
        try:
            re.compile(str(match["regex"]))
        except re.error as exc:
            raise FlowError(f"/{match['regex']}/ is not a regular expression ({exc})") from None
    chosen, steps, created = _router(steps, router)
    if target.id == chosen.id:
        raise FlowError(f"router `{chosen.id}` cannot route to itself")
    route: dict[str, JsonValue] = {**match, "to": target.id}
    routes: list[JsonValue] = [r for r in _routes(chosen) if _same(r) != _same(route)]
    routes.append(route)  # a route with the same condition is replaced
    steps = _replace(steps, _params(chosen, routes=routes))
    detach = answers(target) and target.next is not None
    if detach:
        steps = _detached(steps, target)
    if created:
        said.append(f"Added router `{chosen.id}` at the start.")
    said.append(
        f"Messages matching {condition(route)} now go to `{target.id}`; the rest go on to "
        f"`{_default(_find(steps, chosen.id))}`."
    )
    if detach:
        said.append(f"`{target.id}` now answers only what is routed to it.")
    return _with(spec, steps, " ".join(said))


def _same(route: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in route.items() if key != "to"}


def _router(
    steps: list[PipelineNode], named: str | None
) -> tuple[PipelineNode, list[PipelineNode], bool]:
    """The router a route goes into, the steps (with it), and whether it is new."""
    if named is not None:
        chosen = _find(steps, named)
        if chosen.kind != "router":
            raise FlowError(f"`{named}` is a {chosen.kind} step, not a router")
        return chosen, steps, False
    for step in _main_line(steps):  # the first router that routes by what the message says
        if step.kind == "router" and any(k in r for r in _routes(step) for k in _BY_MESSAGE):
            return step, steps, False
    router = _step(
        "router",
        _unique(_DEFAULT_ROUTER, (s.id for s in steps)),
        {"routes": [], "default": steps[0].id},
    )
    return router, [router, *steps], True


def _detached(steps: list[PipelineNode], target: PipelineNode) -> list[PipelineNode]:
    """`target` taken off the line it sat on: what went on to it goes on to where it went."""
    assert target.next is not None
    edited = []
    for step in steps:
        if step.id == target.id:
            step = step.model_copy(update={"next": None})
        else:
            step = _point(step, target.id, target.next)
        edited.append(step)
    return edited


def ask_for(spec: BotSpec, field: str, question: str | None = None) -> FlowEdit:
    """Ask each person for `field` until it is known, and remember it: an `extract` step first
    (it keeps the value whenever it is said), then a router sending the person to a template
    asking for it while the value is unset; everything else goes on as before."""
    if not _FIELD.fullmatch(field):
        raise FlowError(
            f"'{field[:40]}' is not a field name: use up to 30 lowercase letters, digits and "
            "'_', starting with a letter"
        )
    steps = spec.steps()
    for step in steps:
        if step.kind == "extract" and field in field_names(step.params.get("fields")):
            raise FlowError(f"`{step.id}` already remembers {field}")
    taken = [s.id for s in steps]
    remember = _unique(f"remember-{field}"[:40], taken)
    check = _unique(f"check-{field}"[:40], [*taken, remember])
    ask = _unique(f"ask-{field}"[:40], [*taken, remember, check])
    words = _FIELD_WORDS.get(field, field.replace("_", " "))
    text = question or f"Before we go on: what's your {words}?"
    added = [
        _step("extract", remember, {"fields": field_schema([field])}, next=check),
        _step(
            "router",
            check,
            {
                "routes": [{"participant": field, "is": "unset", "to": ask}],
                "default": steps[0].id,
            },
        ),
    ]
    said = (
        f"Every message now goes through `{remember}` first, which remembers the person's "
        f"{words} when they give it; while it is unknown, `{ask}` asks for it "
        f'("{_short(text, 60)}"). The rest goes on to `{steps[0].id}`.'
    )
    return _with(spec, [*added, *steps, _step("template", ask, {"text": text})], said)
