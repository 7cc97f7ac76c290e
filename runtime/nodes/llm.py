"""The `llm` node: the bot's prompt, the history window and the user's text, to the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from builders.spec import PipelineNode
from runtime.llm import ChatMessage, LlmError
from runtime.pipeline import CompileError, NodeResult, TurnContext, Usage


@dataclass(frozen=True, slots=True)
class LlmNode:
    kind: ClassVar[str] = "llm"
    id: str
    next: str | None = None

    @classmethod
    def from_definition(cls, definition: PipelineNode) -> LlmNode:
        if definition.params:
            unknown = ", ".join(sorted(definition.params))
            raise CompileError(f"pipeline node '{definition.id}': unknown parameters {unknown}")
        return cls(id=definition.id, next=definition.next)

    async def run(self, ctx: TurnContext) -> NodeResult:
        spec = ctx.spec
        messages = [ChatMessage("system", spec.prompt), *ctx.history, ChatMessage("user", ctx.text)]
        try:
            answer = await ctx.llm.complete(
                model=spec.model,
                messages=messages,
                temperature=spec.temperature,
                fallback=spec.fallback,
            )
        except LlmError as exc:
            return NodeResult(reply=spec.fallback, usage=Usage(None, None, None), error=str(exc))
        return NodeResult(
            reply=answer.text or spec.fallback,
            usage=Usage(answer.prompt_tokens, answer.completion_tokens, answer.cost_usd),
        )
