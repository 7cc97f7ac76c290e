"""Web chat sessions: random, unguessable, and signed, so a forged one is recognised without I/O."""

from __future__ import annotations

import hmac
import secrets

from runtime.cipher import Cipher


class SessionIssuer:
    def __init__(self, cipher: Cipher) -> None:
        self._cipher = cipher

    def _mac(self, deployment_id: str, nonce: str) -> str:
        return self._cipher.derive(f"web-session:{deployment_id}:{nonce}", 12)

    def issue(self, deployment_id: str) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._mac(deployment_id, nonce)}"

    def valid(self, deployment_id: str, session: str | None) -> bool:
        if not session or session.count(".") != 1 or len(session) > 100 or not session.isascii():
            return False
        nonce, mac = session.split(".")
        return hmac.compare_digest(mac, self._mac(deployment_id, nonce))
