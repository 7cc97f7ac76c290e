"""Builders of valid inputs for tests: specs, YAML, and a client for a running service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from studio.settings import Settings


def spec_data(name: str = "faq-bot", **fields: Any) -> dict[str, Any]:
    return {"name": name, "prompt": "You answer questions briefly.", **fields}


def spec_yaml(name: str = "faq-bot", **fields: Any) -> str:
    return yaml.safe_dump(spec_data(name, **fields), sort_keys=False)


@dataclass
class Service:
    """A running service (lifespan entered) and an HTTP client acting with the owner key."""

    app: FastAPI
    client: httpx.AsyncClient
    key: str
    settings: Settings

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def call(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        """A REST call that must succeed; returns the JSON body (or text)."""
        response = await self.client.request(method, path, headers=self.auth(key), **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    async def import_bot(self, name: str = "faq-bot", **fields: Any) -> dict[str, Any]:
        return await self.call("POST", "/api/v1/bots/import", json=spec_data(name, **fields))  # type: ignore[no-any-return]

    async def live_bot(self, name: str = "faq-bot", **fields: Any) -> None:
        """Import, then promote to staging and production."""
        await self.import_bot(name, **fields)
        for env in ("staging", "production"):
            await self.call("POST", f"/api/v1/bots/{name}/promote", json={"to": env})

    async def live_web_bot(self, name: str = "faq-bot", **fields: Any) -> str:
        """Import, promote to staging and production, deploy to the web; the deployment id."""
        await self.live_bot(name, **fields)
        deployed = await self.call(
            "POST", f"/api/v1/bots/{name}/deployments", json={"channel": "web"}
        )
        return deployed["id"]  # type: ignore[no-any-return]

    async def chat(
        self, deployment_id: str, text: str, session: str | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"text": text}
        if session is not None:
            body["session"] = session
        return await self.client.post(f"/api/v1/chat/{deployment_id}", json=body)

    async def say(
        self, text: str = "", *, user: str | None = None, action: str | None = None
    ) -> dict[str, Any]:
        """One message to the Studio over HTTP (as the owner key's member, or `user`)."""
        body: dict[str, Any] = {"text": text}
        if user is not None:
            body["user"] = user
        if action is not None:
            body["action"] = action
        return await self.call("POST", "/api/v1/studio/messages", json=body)  # type: ignore[no-any-return]

    async def reply(self, text: str, *, user: str | None = None) -> str:
        """The Studio's plain-text answer to `text`."""
        return str((await self.say(text, user=user))["reply"])

    async def notices(self, after: int = 0, *, user: str | None = None) -> list[str]:
        """What the Studio said later (background test runs), as text."""
        params: dict[str, Any] = {"after": after}
        if user is not None:
            params["user"] = user
        data = await self.call("GET", "/api/v1/studio/messages", params=params)
        return [m["text"] for m in data["messages"]]
