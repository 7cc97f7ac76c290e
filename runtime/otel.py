"""Turns as OpenTelemetry spans, for Langfuse, Jaeger, Grafana Tempo or any OTLP backend.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP/protobuf; the SDK reads the other
`OTEL_*` variables, such as `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_SERVICE_NAME`, from the
environment). Each turn becomes, after it ends, a tree of spans built from its trace
(`runtime.trace`), with the times the steps really took:

    invoke_agent BOT            the turn (gen_ai.agent.*, the channel, version, tokens, cost)
      chat MODEL                an `llm` step (gen_ai.request.model, gen_ai.usage.*)
        execute_tool FUNCTION   each tool it called (gen_ai.tool.*, outcome)
      retrieve kb               any other step: its kind and id, what it tells

Attribute names follow OpenTelemetry's GenAI semantic conventions where they exist; the rest
are `studio.*`. Spans go out in the SDK's batch thread, never on the event loop, and a turn a
bot asks of another bot is a step of the asking turn, not a turn of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode

from builders.spec import OFFLINE_MODEL
from runtime.trace import StepTrace, clock, tool_outcome

if TYPE_CHECKING:
    from runtime.pipeline import TurnContext, TurnOutput
    from runtime.turn.chain import Handler

logger = logging.getLogger(__name__)

SERVICE_NAME = "chat-studio"
_TRACES_PATH = "/v1/traces"
_AttributeValue = str | int | float | bool


def otlp_exporter(endpoint: str) -> SpanExporter:
    """The OTLP/HTTP exporter for `endpoint` (the collector's base URL, as
    `OTEL_EXPORTER_OTLP_ENDPOINT` gives it: traces go to its `/v1/traces`)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/")
    return OTLPSpanExporter(endpoint=base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH)


class TurnSpans:
    """The turn step that exports each finished turn as spans (`BotRunner.export_spans`)."""

    def __init__(self, exporter: SpanExporter, *, service_name: str = SERVICE_NAME) -> None:
        resource = Resource.create({"service.name": service_name})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("chat-studio.turns")

    def close(self) -> None:
        """Send what is still queued, then stop (at shutdown)."""
        self.provider.shutdown()

    async def step(self, ctx: TurnContext, call_next: Handler) -> TurnOutput:
        if ctx.depth:  # a bot asked by another: the asking turn's `bot` step shows it
            return await call_next(ctx)
        wall, began = time.time_ns(), clock()
        output = await call_next(ctx)
        ended = clock()
        try:
            self._export(ctx, output, start=wall - _ns(began - ctx.started), ended=ended)
        except Exception:  # telemetry never costs an answer
            logger.exception("exporting a turn's spans failed", extra={"bot": ctx.bot_id})
        return output

    def _export(self, ctx: TurnContext, output: TurnOutput, *, start: int, ended: float) -> None:
        """`start`: the turn's wall-clock start (ns); `ended`: its end on the turn's clock."""

        def at(moment: float) -> int:  # a moment on the turn's clock, as wall-clock ns
            return start + _ns(moment - ctx.started)

        spec = ctx.spec
        turn: dict[str, _AttributeValue] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": spec.name,
            "gen_ai.request.model": spec.model,
            "studio.channel": ctx.channel,
            "studio.mode": ctx.mode,
        }
        _put(turn, "gen_ai.agent.id", None if ctx.bot_id is None else str(ctx.bot_id))
        _put(turn, "studio.version", ctx.version)
        _put(turn, "studio.step", output.step)
        _put(turn, "studio.blocked", output.blocked)
        _put(turn, "studio.handed_over", output.handed_over)
        _usage(turn, output.usage.prompt_tokens, output.usage.completion_tokens)
        _put(turn, "studio.cost_usd", output.usage.cost_usd)
        root = self.tracer.start_span(
            f"invoke_agent {spec.name}", start_time=start, attributes=turn
        )
        _failed(root, output.error)
        inside = trace.set_span_in_context(root)
        for step in output.steps:
            began = ctx.started + step.at_ms / 1000
            name, attributes = _named(step, spec.model)
            span = self.tracer.start_span(
                name, context=inside, start_time=at(began), attributes=attributes
            )
            _failed(span, step.error)
            calls = trace.set_span_in_context(span)
            for call in step.tools:
                tool = self.tracer.start_span(
                    f"execute_tool {call.function}",
                    context=calls,
                    start_time=at(call.started),
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": call.function,
                        "gen_ai.tool.type": "function",
                        "studio.tool.status": call.status,
                        "studio.tool.response_bytes": call.size,
                    },
                )
                outcome = tool_outcome(call)
                failure = f"{call.status}: {outcome}" if outcome else call.status
                _failed(tool, None if call.status == "ok" else failure)
                tool.end(end_time=at(call.started + call.ms / 1000))
            span.end(end_time=at(began + step.ms / 1000))
        root.end(end_time=at(ended))


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _put(attributes: dict[str, _AttributeValue], name: str, value: _AttributeValue | None) -> None:
    if value is not None:
        attributes[name] = value


def _usage(
    attributes: dict[str, _AttributeValue], prompt: int | None, completion: int | None
) -> None:
    _put(attributes, "gen_ai.usage.input_tokens", prompt)
    _put(attributes, "gen_ai.usage.output_tokens", completion)


def _named(step: StepTrace, model: str) -> tuple[str, Mapping[str, _AttributeValue]]:
    """A step's span name and attributes: an `llm` step is a GenAI chat call."""
    detail: Mapping[str, Any] = step.detail or {}
    attributes: dict[str, _AttributeValue] = {
        "studio.step.id": step.id,
        "studio.step.kind": step.kind,
    }
    _usage(attributes, step.prompt_tokens, step.completion_tokens)
    _put(attributes, "studio.cost_usd", step.cost_usd)
    _put(attributes, "studio.next", step.next)
    for key, value in detail.items():
        if isinstance(value, str | int | float | bool):
            attributes[f"studio.{step.kind}.{key}"] = value
    if step.kind == "retrieve":
        scores = [p["score"] for p in detail.get("passages") or ()]
        attributes["studio.retrieve.passages"] = len(scores)
        _put(attributes, "studio.retrieve.top_score", max(scores, default=None))
    if step.kind != "llm":
        return f"{step.kind} {step.id}", attributes
    used = str(detail.get("model") or model)
    attributes["gen_ai.operation.name"] = "chat"
    attributes["gen_ai.request.model"] = used
    attributes["gen_ai.provider.name"] = provider_of(used)
    return f"chat {used}", attributes


def provider_of(model: str) -> str:
    """The GenAI provider name of a litellm model id (`openai`, `anthropic`, …)."""
    if model == OFFLINE_MODEL:
        return "chat_studio.offline"
    if "/" in model:
        return model.split("/", 1)[0]
    try:
        from litellm import get_llm_provider

        return str(get_llm_provider(model)[1])
    except Exception:  # a name litellm does not know: said so rather than guessed
        return "unknown"


def _failed(span: Span, error: str | None) -> None:
    if error:
        span.set_attribute("error.type", error.split(":", 1)[0])
        span.set_status(Status(StatusCode.ERROR, error[:500]))
