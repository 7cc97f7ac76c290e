"""What a Meta channel is whatever its platform: one Graph client for all its deployments, the
deployments it acts for, the messaging window, what the Meta app's dashboard is given for the
webhook, and the deployment a send is for. `adapters.whatsapp` and `adapters.messenger` subclass
`MetaChannel` with their own platform's rules (deploy inputs, payloads, sends)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from adapters.meta.accounts import MetaAccount, MetaDeployments
from adapters.meta.graph import GraphClient
from adapters.meta.webhook import verify_token, webhook_details
from adapters.meta.window import Window
from runtime.channel import SendError
from runtime.cipher import Cipher
from runtime.runtime import Runtime, UnknownDeploymentError


class MetaChannel:
    """The part of a Meta channel (a `DeployableChannel`, and the `MetaWebhook` its routes reach)
    that every Meta platform shares."""

    kind: ClassVar[str]
    title: ClassVar[str]

    def __init__(
        self, *, runtime: Runtime, cipher: Cipher, api_url: str, public_url: str | None
    ) -> None:
        self.runtime = runtime
        self.cipher = cipher
        self.public_url = (public_url or "").rstrip("/") or None
        self.graph = GraphClient(api_url, channel=self.kind)
        self.deployments = MetaDeployments(
            kind=self.kind, db=runtime.db, cipher=cipher, graph=self.graph
        )
        self.window = Window(runtime.db)

    def link(self, deployment_id: str, stored: str | None) -> str | None:
        return stored

    def details(self, deployment_id: str) -> Mapping[str, str]:
        """The callback URL and verify token to paste into the Meta app's webhook settings
        (WhatsApp > Configuration, Messenger > Settings > Webhooks; the path alone without
        `STUDIO_PUBLIC_URL`: prefix the public address)."""
        return webhook_details(
            public_url=self.public_url,
            kind=self.kind,
            deployment_id=deployment_id,
            verify_token=self.verify_token(deployment_id),
        )

    def verify_token(self, deployment_id: str) -> str:
        return verify_token(self.cipher, self.kind, deployment_id)

    async def _account(self, deployment_id: str) -> MetaAccount:
        account = await self.deployments.account(deployment_id)
        if account is None:
            raise SendError(f"no {self.title} deployment {deployment_id} here", permanent=True)
        return account

    async def _bot_name(self, deployment_id: str) -> str:
        """The deployment's bot, as a refusal names it in the command that would fix it."""
        try:
            return await self.runtime.bot_name(deployment_id) or "BOT"
        except UnknownDeploymentError:
            return "BOT"

    async def close(self) -> None:
        await self.deployments.close()
        await self.graph.close()
