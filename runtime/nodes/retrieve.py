"""The `retrieve` node: the bot's knowledge passages closest to the user's text, for the `llm`
node to answer from (and cite). Params: `top_k` (default 4), `min_score` (cosine, default 0.3)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import ClassVar

from builders.spec import PipelineNode
from runtime.knowledge.extract import KnowledgeInputError
from runtime.pipeline import CompileError, NodeResult, TurnContext, Usage

logger = logging.getLogger(__name__)

PASSAGES = "passages"  # the state key the llm node reads
DEFAULT_TOP_K = 4
DEFAULT_MIN_SCORE = 0.3
_PARAMS = frozenset({"top_k", "min_score"})


@dataclass(frozen=True, slots=True)
class RetrieveNode:
    kind: ClassVar[str] = "retrieve"
    id: str
    next: str | None = None
    uses_memory: ClassVar[bool] = False
    top_k: int = DEFAULT_TOP_K
    min_score: float = DEFAULT_MIN_SCORE

    @classmethod
    def from_definition(cls, definition: PipelineNode) -> RetrieveNode:
        params = definition.params
        unknown = set(params) - _PARAMS
        if unknown:
            raise CompileError(
                f"pipeline node '{definition.id}': unknown parameters {', '.join(sorted(unknown))}"
            )
        top_k = params.get("top_k", DEFAULT_TOP_K)
        min_score = params.get("min_score", DEFAULT_MIN_SCORE)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= 20:
            raise CompileError(f"pipeline node '{definition.id}': top_k must be 1 to 20")
        if not isinstance(min_score, int | float) or not -1 <= float(min_score) <= 1:
            raise CompileError(f"pipeline node '{definition.id}': min_score must be -1 to 1")
        return cls(id=definition.id, next=definition.next, top_k=top_k, min_score=float(min_score))

    async def run(self, ctx: TurnContext) -> NodeResult:
        names = {ref.id: ref.name for ref in ctx.spec.knowledge}
        ctx.state[PASSAGES] = []
        if ctx.knowledge is None or ctx.bot_id is None or not names:
            return NodeResult(usage=Usage(0, 0, 0.0))
        try:
            found = await ctx.knowledge.retrieve(
                bot_id=ctx.bot_id,
                source_ids=frozenset(names),
                text=ctx.text,
                limit=self.top_k,
                min_score=self.min_score,
            )
        except KnowledgeInputError as exc:  # the embedding model failed: the fallback, counted
            return NodeResult(usage=Usage(0, 0, 0.0), error=f"knowledge: {exc}")
        except Exception as exc:  # the vector store failed: the same, never a silent turn
            logger.exception("knowledge retrieval failed", extra={"bot": ctx.bot_id})
            return NodeResult(usage=Usage(0, 0, 0.0), error=f"knowledge: {type(exc).__name__}")
        # Cited by the names this version knows them by, whatever a later upload called them.
        ctx.state[PASSAGES] = [replace(p, source_name=names[p.source_id]) for p in found]
        return NodeResult(usage=Usage(0, 0, 0.0))
