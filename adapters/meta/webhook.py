"""The webhook of a Meta channel's deployments: `GET|POST /{kind}/{deployment_id}`.

`GET` is Meta's verification request: `hub.mode=subscribe`, `hub.verify_token` (the deployment's
own, derived from the service's key and its id, so it survives restarts and is never stored)
and `hub.challenge`, which is echoed as plain text. `POST` is an event notification, signed in
`X-Hub-Signature-256` (`sha256=` and the hex HMAC-SHA256 of the raw body, keyed with the app
secret of the deployment's Meta app): checked on the bytes as they came (Meta escapes `/` and
non-ASCII, so a re-serialised body would not match), in constant time, before anything is read.

Answers: an unknown deployment (or one of another channel) 404, a wrong verify token 403, a
bad or missing signature 401; a signed post 200 once its messages are recorded, whatever they
hold (Meta retries a non-200 for days, so a post nothing can be done with is logged, not
refused). The app's request limits cap the body at Meta's own limit, 3 MB
(`WEBHOOK_MAX_BYTES`, a plugin's `body_limits`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Protocol

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from adapters.meta.accounts import MetaAccount, MetaDeployments
from adapters.plugin import built
from runtime.cipher import Cipher

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="
MAX_CHALLENGE_CHARS = 256  # Meta's is a number; anything longer is not Meta's
WEBHOOK_MAX_BYTES = 3 * 1024 * 1024  # Meta's own limit for an event notification


def signature_valid(body: bytes, signature: str | None, app_secret: str) -> bool:
    """Whether `signature` (the header's value) signs `body` with `app_secret`."""
    if not signature or not signature.startswith(_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature[len(_PREFIX) :].lower().encode())


def verify_token(cipher: Cipher, kind: str, deployment_id: str) -> str:
    """The token Meta's verification request must carry for this deployment."""
    return cipher.derive(f"{kind}-verify:{deployment_id}", length=32)


def webhook_details(
    *, public_url: str | None, kind: str, deployment_id: str, verify_token: str
) -> dict[str, str]:
    """What the person deploying pastes into the Meta app's webhook settings: the callback URL
    (the path alone without a public URL: they prefix the service's public address) and the
    verify token."""
    path = f"/{kind}/{deployment_id}"
    base = (public_url or "").rstrip("/")
    return {"webhook_url": f"{base}{path}", "verify_token": verify_token}


def first_problem(exc: ValidationError) -> str:
    """The first problem pydantic found in a payload, short, for a log line: where and what,
    never the input values (they may be anyone's words)."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return (f"{where}: {error['msg']}" if where else error["msg"])[:200]


def challenge_answer(query: Mapping[str, str], expected: str) -> tuple[int, str]:
    """(status, body) for a verification request: the challenge when the token is right."""
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        given.encode(), expected.encode()
    ):
        return 403, "wrong verify token"
    challenge = query.get("hub.challenge", "")
    if not challenge or len(challenge) > MAX_CHALLENGE_CHARS or not challenge.isprintable():
        return 400, "no challenge"
    return 200, challenge


class MetaWebhook(Protocol):
    """What a Meta channel's adapter gives its routes."""

    deployments: MetaDeployments

    def verify_token(self, deployment_id: str) -> str: ...

    async def handle(self, account: MetaAccount, body: bytes) -> None:
        """A signed post for `account`: its messages recorded (raises only when recording
        fails, so that Meta delivers it again); anything unreadable is logged."""
        ...


def webhook_router(kind: str) -> APIRouter:
    """The routes of the channel `kind`, whose plugin's adapter is a `MetaWebhook`."""
    routes = APIRouter()
    path = f"/{kind}/{{deployment_id}}"

    @routes.get(path, include_in_schema=False)
    async def verification(deployment_id: str, request: Request) -> Response:
        adapter: MetaWebhook = built(request, kind)
        if await adapter.deployments.account(deployment_id) is None:
            return PlainTextResponse("unknown deployment", status_code=404)
        expected = adapter.verify_token(deployment_id)
        status, body = challenge_answer(request.query_params, expected)
        return PlainTextResponse(body, status_code=status)

    @routes.post(path, include_in_schema=False)
    async def notification(deployment_id: str, request: Request) -> Response:
        adapter: MetaWebhook = built(request, kind)
        account = await adapter.deployments.account(deployment_id)
        if account is None:
            return Response(status_code=404)
        body = await request.body()
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature_valid(body, signature, account.credentials.app_secret):
            return Response(status_code=401)
        await adapter.handle(account, body)
        return Response(status_code=200)

    return routes
