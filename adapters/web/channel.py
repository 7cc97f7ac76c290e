"""The web channel: replies travel back in the HTTP response to the message."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from runtime.channel import (
    Capabilities,
    DeployForm,
    DeployInputError,
    DeploymentInfo,
    DeployPlan,
    SendError,
    SendReceipt,
)
from runtime.messages import OutgoingMessage


class WebChannel:
    kind: ClassVar[str] = "web"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, synchronous=True)
    title: ClassVar[str] = "the web chat"
    form: ClassVar[DeployForm] = DeployForm()

    def __init__(self, public_url: str | None) -> None:
        self.base = (public_url or "").rstrip("/")

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        raise SendError(
            "the web channel has no push: replies go in the HTTP response", permanent=True
        )

    def plan(
        self, *, target: str | None, secrets: Mapping[str, str], options: Mapping[str, str]
    ) -> DeployPlan:
        if target or secrets:
            raise DeployInputError("a web deployment takes no target or token")
        return DeployPlan(target=None)

    def details(self, deployment_id: str) -> Mapping[str, str]:
        return {}

    def link(self, deployment_id: str, stored: str | None) -> str | None:
        return f"{self.base}/chat/{deployment_id}"

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return self.link(deployment.id, None)

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None
