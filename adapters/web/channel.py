"""The web channel: replies travel back in the HTTP response to the message."""

from __future__ import annotations

from typing import ClassVar

from runtime.channel import Capabilities, DeploymentInfo, SendError, SendReceipt
from runtime.messages import OutgoingMessage


class WebChannel:
    kind: ClassVar[str] = "web"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, synchronous=True)

    def __init__(self, public_url: str | None) -> None:
        self.base = (public_url or "").rstrip("/")

    async def send(self, message: OutgoingMessage) -> SendReceipt:
        raise SendError(
            "the web channel has no push: replies go in the HTTP response", permanent=True
        )

    async def setup(self, deployment: DeploymentInfo) -> str | None:
        return f"{self.base}/chat/{deployment.id}"

    async def teardown(self, deployment: DeploymentInfo) -> None:
        return None
