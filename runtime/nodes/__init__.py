"""One module per node kind; `NODE_KINDS` maps a kind to the factory that builds its node from a
step's definition (checking its params) and the spec it belongs to."""

from __future__ import annotations

from runtime.nodes.bot import BotNode
from runtime.nodes.extract import ExtractNode
from runtime.nodes.handoff import HandoffNode
from runtime.nodes.llm import LlmNode
from runtime.nodes.retrieve import RetrieveNode
from runtime.nodes.router import RouterNode
from runtime.nodes.template import TemplateNode
from runtime.nodes.tool import ToolNode
from runtime.pipeline import NodeFactory

NODE_KINDS: dict[str, NodeFactory] = {
    LlmNode.kind: LlmNode.from_definition,
    RetrieveNode.kind: RetrieveNode.from_definition,
    RouterNode.kind: RouterNode.from_definition,
    TemplateNode.kind: TemplateNode.from_definition,
    ExtractNode.kind: ExtractNode.from_definition,
    BotNode.kind: BotNode.from_definition,
    ToolNode.kind: ToolNode.from_definition,
    "http_tool": ToolNode.from_definition,  # SPEC's first name for it: the same step
    HandoffNode.kind: HandoffNode.from_definition,
}
