"""Free text through the builder model: the Studio's commands are offered as tools, and the
model's tool calls become the same typed commands the grammar produces. The model never acts
itself: the engine executes its commands with the caller's role, confirmations included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from pydantic import ValidationError

from runtime.llm import ChatMessage, LlmGateway
from studio.commands import COMMANDS, Command, command_for_tool, tool_schemas

_SYSTEM = """You are the Studio of Chat Studio, a colleague who helps a team build LLM chatbots \
by conversation. A bot has a draft (persona prompt, model, temperature, greeting, fallback, \
history window, tests); promoting it to staging freezes the draft into a numbered version \
(only while its tests pass), promoting to production runs staging's version; deployments put an \
environment on the web, Slack or Telegram. The `offline` model needs no keys.

Act only through the tools, one call per step, in the order the steps must happen; use the \
bot names the user gives (lowercase, digits and '-'). When the user only asks a question, answer \
it in two or three sentences without calling tools. Never invent results: the Studio reports \
what each call did.

The commands:
{commands}

The team's bots: {bots}. The bot the user talked about last: {current}. The user's role: {role}."""


@dataclass(frozen=True, slots=True)
class Understood:
    text: str  # the model's own words, if any
    commands: tuple[Command, ...]
    problems: tuple[str, ...]  # tool calls that could not be used, one line each


@cache
def _describe() -> str:
    return "\n".join(f"{c.usage}: {c.summary}" for c in COMMANDS if c.usage)


def _command(name: str, arguments: str) -> Command | str:
    """The command a tool call asks for, or a one-line reason it cannot be used."""
    command = command_for_tool(name)
    if command is None:
        return f"the model asked for an unknown action '{name[:40]}'"
    try:
        data = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return f"the model sent malformed arguments for {command.name}"
    if not isinstance(data, dict):
        return f"the model sent malformed arguments for {command.name}"
    try:
        return command.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        return f"the model's {command.name} had a bad {where}: {first['msg']}"


async def understand(
    text: str,
    *,
    llm: LlmGateway,
    model: str,
    bots: list[str],
    current: str | None,
    role: str,
) -> Understood:
    """Ask the builder model what `text` means. Raises `LlmError` when the model fails."""
    system = _SYSTEM.format(
        commands=_describe(),
        bots=", ".join(bots[:50]) or "none yet",
        current=current or "none",
        role=role,
    )
    answer = await llm.complete(
        model=model,
        messages=[ChatMessage("system", system), ChatMessage("user", text)],
        temperature=0.0,
        fallback="",
        tools=tool_schemas(),
    )
    commands: list[Command] = []
    problems: list[str] = []
    for call in answer.tool_calls:
        parsed = _command(call.name, call.arguments)
        if isinstance(parsed, str):
            problems.append(parsed)
        else:
            commands.append(parsed)
    return Understood(text=answer.text.strip(), commands=tuple(commands), problems=tuple(problems))
