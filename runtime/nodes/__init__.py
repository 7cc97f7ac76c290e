"""One module per node kind; `NODE_KINDS` maps a kind to the factory that builds it."""

from __future__ import annotations

from collections.abc import Callable

from builders.spec import PipelineNode
from runtime.nodes.llm import LlmNode
from runtime.nodes.retrieve import RetrieveNode
from runtime.pipeline import Node

NODE_KINDS: dict[str, Callable[[PipelineNode], Node]] = {
    LlmNode.kind: LlmNode.from_definition,
    RetrieveNode.kind: RetrieveNode.from_definition,
}
