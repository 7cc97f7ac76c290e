"""The `handoff` node: hands the conversation to people of the team (`runtime.handoff`), tells
the end user `message`, and ends the turn. The bot's `handoff` target (where the team answers)
must be set before such a step can be saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import StringConstraints

from builders.spec import BotSpec, PipelineNode
from runtime.handoff import DEFAULT_MESSAGE, start_handoff
from runtime.nodes.base import NodeParams, parse_params, step_error
from runtime.pipeline import NodeResult, TurnContext


class Params(NodeParams):
    """`message`: what the end user is told; `reason`: what the team is told (default: the
    step that handed over)."""

    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)] = DEFAULT_MESSAGE
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


@dataclass(frozen=True, slots=True)
class HandoffNode:
    kind: ClassVar[str] = "handoff"
    answers: ClassVar[bool] = True
    uses_memory: ClassVar[bool] = False
    id: str
    message: str
    reason: str
    next: str | None = None  # always None: the turn ends here

    @classmethod
    def from_definition(cls, definition: PipelineNode, spec: BotSpec) -> HandoffNode:
        params = parse_params(Params, definition)
        if spec.handoff is None:
            raise step_error(
                definition.id,
                f"a handoff step needs somewhere to hand over: /handoff {spec.name} to #channel "
                "first (a Slack channel, or a Telegram group with the Studio's bot)",
            )
        if definition.next is not None:
            raise step_error(
                definition.id,
                f"a handoff step ends the turn, so it cannot go on to '{definition.next}' "
                f"(/flow {spec.name} link {definition.id} end)",
            )
        reason = params.reason or f"the flow reached step '{definition.id}'"
        return cls(id=definition.id, message=params.message, reason=reason)

    @property
    def successors(self) -> tuple[tuple[str, str], ...]:
        return ()

    async def run(self, ctx: TurnContext) -> NodeResult:
        return await start_handoff(ctx, reason=self.reason, message=self.message)
