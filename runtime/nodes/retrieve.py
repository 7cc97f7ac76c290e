"""The `retrieve` node: the bot's knowledge passages closest to the user's text, for the `llm`
node to answer from (and cite). Params: `top_k` and `min_score` (cosine); each defaults to the
bot's own setting (`/set BOT knowledge.k 6`, `knowledge.min_score`). The turn's trace gets each
passage's citation, score and first words."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Annotated, ClassVar

from pydantic import Field

from builders.spec import BotSpec, PipelineNode
from runtime.knowledge.extract import KnowledgeInputError
from runtime.knowledge.store import HYBRID
from runtime.nodes.base import NodeParams, onward, parse_params
from runtime.pipeline import NodeResult, TurnContext, Usage

logger = logging.getLogger(__name__)

PASSAGES = "passages"  # the state key the llm node reads
_SNIPPET_CHARS = 80


class Params(NodeParams):
    top_k: Annotated[int, Field(ge=1, le=20)] | None = None
    min_score: Annotated[float, Field(ge=-1, le=1)] | None = None


@dataclass(frozen=True, slots=True)
class RetrieveNode:
    kind: ClassVar[str] = "retrieve"
    answers: ClassVar[bool] = False
    uses_memory: ClassVar[bool] = False
    id: str
    next: str | None = None
    top_k: int = 4
    min_score: float = 0.3

    @classmethod
    def from_definition(cls, definition: PipelineNode, spec: BotSpec) -> RetrieveNode:
        params = parse_params(Params, definition)
        return cls(
            id=definition.id,
            next=definition.next,
            top_k=spec.retrieval.k if params.top_k is None else params.top_k,
            min_score=spec.retrieval.min_score if params.min_score is None else params.min_score,
        )

    @property
    def successors(self) -> tuple[tuple[str, str], ...]:
        return onward(self.next)

    async def run(self, ctx: TurnContext) -> NodeResult:
        names = {ref.id: ref.name for ref in ctx.spec.knowledge}
        ctx.state[PASSAGES] = []
        if ctx.knowledge is None or ctx.bot_id is None or not names:
            why = "the bot has no knowledge" if not names else "no knowledge here"
            return NodeResult(usage=Usage(0, 0, 0.0), trace={"passages": [], "why": why})
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
        passages = [replace(p, source_name=names[p.source_id]) for p in found.passages]
        ctx.state[PASSAGES] = passages
        told = [
            {
                "cited": p.citation,
                "score": round(p.score, 3),
                "snippet": " ".join(p.text[:_SNIPPET_CHARS].split()),
            }
            for p in passages
        ]
        trace: dict[str, object] = {"passages": told, "min_score": self.min_score}
        if found.search != HYBRID:
            trace["search"] = found.search  # why keywords did not help find them
        return NodeResult(usage=Usage(0, 0, 0.0), trace=trace)
