"""The tool gateway: every tool call goes through here (principle: one gateway per external
service), whatever its kind.

A call is checked before anything leaves: the function must be one of the bot's, its arguments
must be JSON that fits the operation's schema, an operation that changes something must be
allowed by the spec, and the secret it needs must be set. Then the kind's executor calls it
under the tool's timeout. The result that goes back to the model has the secret's value masked
and is cut to `MAX_MODEL_CHARS`; the turn keeps a `ToolCallRecord` of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from jsonschema import SchemaError, validators
from jsonschema import ValidationError as SchemaViolation
from jsonschema.validators import validator_for
from pydantic import JsonValue
from referencing import Registry
from referencing.exceptions import Unresolvable

from builders.spec import BotSpec, ToolOperation, ToolSpec
from runtime.nodes.patterns import PatternTimeoutError, compile_pattern, search
from runtime.tools.base import (
    SecretSource,
    ToolCallRecord,
    ToolExecutor,
    ToolResult,
    ToolSetupError,
    masked,
)

logger = logging.getLogger(__name__)

MAX_MODEL_CHARS = 16_000  # of one result, as the model reads it


class ToolGateway:
    def __init__(self, executors: Sequence[ToolExecutor], *, secrets: SecretSource) -> None:
        self._executors = {executor.kind: executor for executor in executors}
        self._secrets = secrets

    def _executor(self, kind: str) -> ToolExecutor:
        executor = self._executors.get(kind)
        if executor is None:
            raise ToolSetupError(f"{kind} tools are not available in this service")
        return executor

    async def describe(
        self,
        *,
        kind: str,
        name: str,
        url: str,
        wanted: Sequence[str],
        auth: str | None,
        team_id: int,
    ) -> ToolSpec:
        """The tool `url` offers (the operations or tools `wanted`, all when none), read now;
        `ToolSetupError` with a one-line reason otherwise."""
        secret = await self._reveal(team_id, auth)
        if auth is not None and secret is None:
            raise ToolSetupError(
                f"the secret '{auth}' is not set for this team: /secret set {auth} first"
            )
        tool = await self._executor(kind).describe(
            name=name, url=url, wanted=wanted, auth=auth, secret=secret
        )
        for operation in tool.operations:
            problem = schema_problem(operation)
            if problem:
                raise ToolSetupError(f"{operation.id}: {problem}")
        return tool

    async def call(
        self, spec: BotSpec, function: str, arguments: str, *, team_id: int | None
    ) -> tuple[ToolResult, ToolCallRecord]:
        """Run the model's call of `function` with `arguments` (its JSON, verbatim)."""
        started = time.perf_counter()
        result, secret = await self._call(spec, function, arguments, team_id=team_id)
        content = masked(result.content, secret)
        if len(content) > MAX_MODEL_CHARS:
            content = content[:MAX_MODEL_CHARS] + f"\n[cut: {len(content)} characters in all]"
        result = ToolResult(result.status, content, result.size, result.http_status)
        record = ToolCallRecord(
            function=function,
            arguments=masked(arguments, secret)[:2000],
            status=result.status,
            ms=round((time.perf_counter() - started) * 1000, 2),
            size=result.size,
            detail=_detail(result),
            started=started,
        )
        return result, record

    async def _call(
        self, spec: BotSpec, function: str, arguments: str, *, team_id: int | None
    ) -> tuple[ToolResult, str | None]:
        found = spec.operation(function)
        if found is None:
            known = ", ".join(op.function for tool in spec.tools for op in tool.operations)
            return _refused(
                f"there is no tool called '{function}' (tools: {known or 'none'})"
            ), None
        tool, operation = found
        if operation.changes and not operation.allowed:
            return _refused(
                f"'{function}' changes something and this bot is not allowed to run it"
            ), None
        parsed = _arguments(arguments, operation)
        if isinstance(parsed, ToolResult):
            return parsed, None
        if tool.auth is not None and team_id is None:
            return _refused(
                f"'{function}' needs the secret '{tool.auth}', not available here"
            ), None
        secret = await self._reveal(team_id, tool.auth) if team_id is not None else None
        if tool.auth is not None and secret is None:
            return _refused(f"the secret '{tool.auth}' is not set for this team"), None
        executor = self._executors.get(tool.kind)
        if executor is None:
            return _refused(f"{tool.kind} tools are not available in this service"), secret
        await executor.ready()  # a first use's import does not count against the tool's time
        try:
            # A guard over the executor's own timeouts: nothing a service does may hang a turn.
            async with asyncio.timeout(tool.timeout_s + 1.0):
                return await executor.call(tool, operation, parsed, secret=secret), secret
        except TimeoutError:
            return ToolResult("timeout", f"no answer within {tool.timeout_s:g} s"), secret
        except Exception:  # a bug in an executor: the turn goes on, the log has it
            logger.exception("tool call failed", extra={"tool": tool.name, "function": function})
            return ToolResult("error", "the tool failed on our side"), secret

    async def _reveal(self, team_id: int, name: str | None) -> str | None:
        return None if name is None else await self._secrets.reveal(team_id, name)

    async def close(self) -> None:
        for executor in self._executors.values():
            await executor.close()


def _refused(reason: str) -> ToolResult:
    return ToolResult("refused", reason)


def _arguments(arguments: str, operation: ToolOperation) -> dict[str, JsonValue] | ToolResult:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return _refused("the arguments are not valid JSON")
    if not isinstance(parsed, dict):
        return _refused("the arguments must be a JSON object")
    validator = _validator(json.dumps(operation.parameters, sort_keys=True))
    try:
        error = next(iter(validator.iter_errors(parsed)), None)
    except Unresolvable:
        return _refused("the operation's argument schema refers outside itself")
    except RecursionError:
        return _refused("the operation's argument schema nests too deeply")
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "arguments"
        return _refused(f"{where}: {error.message}"[:300])
    return parsed


# A `$ref` outside the schema itself is never fetched (jsonschema's default would fetch any URL,
# blocking, past the address checks): an empty registry leaves it unresolvable.
_NOWHERE: Registry[Any] = Registry()


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[SchemaViolation]:
    """`pattern` checked with the time limit builders' patterns have (`runtime.nodes.patterns`):
    a service's schema must not stall the event loop on the model's arguments."""
    if not validator.is_type(instance, "string"):
        return
    try:
        found = search(_compiled(pattern), instance)
    except (ValueError, PatternTimeoutError) as exc:
        yield SchemaViolation(f"the pattern cannot be checked ({exc})"[:200])
        return
    if found is None:
        yield SchemaViolation(f"{instance[:100]!r} does not match {pattern[:100]!r}")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    return compile_pattern(pattern)


@lru_cache(maxsize=16)
def _checking(base: Any) -> Any:
    """`base` (a jsonschema validator class) with time-limited patterns."""
    return validators.extend(base, {"pattern": _pattern})


@lru_cache(maxsize=1024)
def _validator(schema: str) -> Any:
    """A compiled validator per schema (kept: validation runs on every call)."""
    loaded = json.loads(schema)
    return _checking(validator_for(loaded))(loaded, registry=_NOWHERE)


def schema_problem(operation: ToolOperation) -> str | None:
    """Why an operation's parameters are not a usable JSON schema of an object (None: usable)."""
    schema = operation.parameters
    if schema.get("type", "object") != "object":
        return "its arguments must be an object"
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return f"its argument schema is invalid ({exc.message})"[:300]
    return None


def _detail(result: ToolResult) -> str:
    """One line for people: the HTTP status, and our own reason when a call failed although the
    service answered 2xx/3xx (a binary or oversized answer); a service's error body stays out."""
    status = f"HTTP {result.http_status}" if result.http_status else ""
    if result.status == "ok" or (result.http_status or 0) >= 400:
        return status
    reason = result.content.splitlines()[0][:200] if result.content else ""
    if not status or reason.startswith(status):
        return reason or status
    return f"{status}: {reason}" if reason else status
