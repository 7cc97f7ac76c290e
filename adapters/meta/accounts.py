"""A Meta channel's deployments as the channel acts for them: each one's credentials (an access
token, the app secret that signs its webhooks, and its options) kept encrypted as one JSON
string, read and decrypted once per process, and the Graph calls made with them. A token Meta
refuses (#190: invalid, expired, revoked) is reported once as a broken deployment, in the
background: the Studio marks it and tells the team, and the send fails for good meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import select

from adapters.meta.graph import GraphClient, GraphError
from runtime.channel import DeployInputError, DeploymentInfo, SendError
from runtime.cipher import Cipher
from storage.database import Database
from storage.tables import Deployment

logger = logging.getLogger(__name__)

BrokenReport = Callable[[str, str], Coroutine[Any, Any, None]]

_TOKEN = re.compile(r"[A-Za-z0-9_.|-]{20,2048}")  # Meta's access tokens: EAA… (~200 characters)
_APP_SECRET = re.compile(r"[0-9a-fA-F]{32}")  # what App settings > Basic shows


def is_access_token(value: str) -> bool:
    """Whether `value` has the shape of a Meta access token (a system user's, a Page's), and is
    not the app secret: both are pasted from Meta's dashboards, and easily swapped."""
    return bool(_TOKEN.fullmatch(value)) and not _APP_SECRET.fullmatch(value)


def is_app_secret(value: str) -> bool:
    """Whether `value` has the shape of an app secret (32 hexadecimal digits)."""
    return bool(_APP_SECRET.fullmatch(value))


def deploy_secrets(secrets: Mapping[str, str], *, token: str, source: str) -> tuple[str, str]:
    """The access token and the app secret given to deploy, or `DeployInputError` saying which
    to give: `token` names the platform's token, `source` where Meta shows it."""
    given = (secrets.get("token") or "").strip()
    if not is_access_token(given):
        raise DeployInputError(
            f"give {token} ({source}; it starts with EAA); it is stored encrypted and never "
            "shown again"
        )
    app_secret = (secrets.get("app_secret") or "").strip()
    if not is_app_secret(app_secret):
        raise DeployInputError(
            "give the app secret from your Meta app's App settings > Basic (32 hexadecimal "
            "digits): it signs the webhook's posts; it is stored encrypted"
        )
    return given, app_secret


class _Stored(BaseModel):
    """The credentials' JSON, as stored (encrypted)."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1)
    app_secret: str = Field(min_length=1)
    options: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class MetaCredentials:
    """What a deployment keeps encrypted. Neither secret is in its `repr`, so no log line or
    traceback can show them."""

    token: str = field(repr=False)
    app_secret: str = field(repr=False)
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str) -> str | None:
        return dict(self.options).get(name)

    def dumps(self) -> str:
        """One JSON string, keys sorted: the same credentials always give the same string, so a
        deploy that gives nothing new is recognised as such."""
        stored = {"token": self.token, "app_secret": self.app_secret, "options": dict(self.options)}
        return json.dumps(stored, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> MetaCredentials:
        """The credentials `dumps` wrote (`ValueError`: not those)."""
        try:
            stored = _Stored.model_validate_json(text)
        except ValidationError:
            raise ValueError("not a Meta deployment's credentials") from None
        return cls(stored.token, stored.app_secret, tuple(sorted(stored.options.items())))


@dataclass(frozen=True, slots=True)
class MetaAccount:
    """A deployment as its channel acts for it: its id, its target (a WhatsApp phone-number id,
    a Page id) and its credentials."""

    deployment_id: str
    target: str
    credentials: MetaCredentials


class MetaDeployments:
    """The deployments of one Meta channel (`kind`) this process acts for, and the Graph calls
    made as them. `on_broken(deployment_id, reason)` is told when Meta refuses a token."""

    def __init__(self, *, kind: str, db: Database, cipher: Cipher, graph: GraphClient) -> None:
        self.kind = kind
        self.db = db
        self.cipher = cipher
        self.graph = graph
        self.on_broken: BrokenReport | None = None
        self._accounts: dict[str, MetaAccount] = {}
        self._reported: set[str] = set()
        self._reports: set[asyncio.Task[None]] = set()

    async def account(self, deployment_id: str) -> MetaAccount | None:
        """The deployment `deployment_id` of this channel; None when there is none, or when its
        credentials cannot be read (logged: the service's secret key changed?)."""
        cached = self._accounts.get(deployment_id)
        if cached is not None:
            return cached
        async with self.db.read() as session:
            row = await session.get(Deployment, deployment_id)
        if row is None or row.channel != self.kind:
            return None
        try:
            account = self._read(row.id, row.target, row.credentials)
        except ValueError as exc:
            logger.error("a deployment's credentials: %s", exc, extra={"deployment": row.id})
            return None
        self._accounts[row.id] = account
        return account

    async def serving(self, account: MetaAccount, target: str) -> MetaAccount | None:
        """The deployment that serves `target` (a phone-number id, a Page id) named in a post
        that came to `account`'s webhook, signed with its app secret: `account` itself, or
        another deployment of the same Meta app. An app has one webhook URL for all its numbers
        or Pages, so each of its posts comes to the URL pasted last. None when no deployment of
        that app serves `target`."""
        if target == account.target:
            return account
        query = select(Deployment.id).where(
            Deployment.channel == self.kind, Deployment.target == target
        )
        async with self.db.read() as session:
            found = (await session.exec(query)).first()
        other = await self.account(found) if found is not None else None
        if other is None or not hmac.compare_digest(
            other.credentials.app_secret.encode(), account.credentials.app_secret.encode()
        ):
            return None
        return other

    def given(self, deployment: DeploymentInfo) -> MetaAccount:
        """The account a deployment being set up was given (`SendError` when its credentials
        cannot be read); not kept until `remember`."""
        try:
            return self._read(deployment.id, deployment.target, deployment.credentials)
        except ValueError as exc:
            raise SendError(str(exc), permanent=True) from None

    def remember(self, account: MetaAccount) -> None:
        """A deployment set up (again): its new credentials serve from now on."""
        self._accounts[account.deployment_id] = account
        self._reported.discard(account.deployment_id)

    def forget(self, deployment_id: str) -> None:
        self._accounts.pop(deployment_id, None)

    def _read(self, deployment_id: str, target: str, encrypted: bytes | None) -> MetaAccount:
        if encrypted is None:
            raise ValueError("the deployment has no credentials")
        credentials = MetaCredentials.loads(self.cipher.decrypt(encrypted))
        return MetaAccount(deployment_id, target, credentials)

    async def call(
        self,
        account: MetaAccount,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Graph call as the deployment (`GraphClient.call`); a token Meta refuses is
        reported as a broken deployment before the `GraphError` is raised."""
        try:
            return await self.graph.call(
                method,
                path,
                token=account.credentials.token,
                json=json,
                data=data,
                files=files,
                params=params,
            )
        except GraphError as error:
            if error.token_refused:
                self._broken(account.deployment_id, error.reason)
            raise

    def _broken(self, deployment_id: str, reason: str) -> None:
        """Report a refused token once (until the deployment is set up again), in the
        background: a send never waits on the Studio."""
        self.forget(deployment_id)  # the stored credentials may be new: read them again
        if self.on_broken is None or deployment_id in self._reported:
            return
        self._reported.add(deployment_id)
        report = asyncio.create_task(
            self.on_broken(deployment_id, f"Meta refused its access token ({reason})")
        )
        self._reports.add(report)
        report.add_done_callback(self._reported_done)

    def _reported_done(self, task: asyncio.Task[None]) -> None:
        self._reports.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "telling the Studio of a broken deployment failed", exc_info=task.exception()
            )

    async def close(self) -> None:
        """Wait for the reports under way (the Studio is still up when channels close)."""
        if self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)
