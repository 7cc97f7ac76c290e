"""Encryption of stored credentials (channel tokens, team secrets) with the service's secret key."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

# Bot tokens are never stored, logged or echoed in clear.
from builders.tokens import BOT_TOKEN, redact_tokens

__all__ = ["BOT_TOKEN", "Cipher", "load_or_create_secret", "redact_tokens"]


class Cipher:
    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._secret = secret.encode()

    def encrypt(self, plain: str) -> bytes:
        return self._fernet.encrypt(plain.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ValueError(
                "stored credentials cannot be decrypted with this secret key"
            ) from None

    def derive(self, purpose: str, length: int = 32) -> str:
        """A stable, URL-safe value bound to this key and `purpose` (webhook secrets, sessions)."""
        mac = hashlib.blake2b(purpose.encode(), key=self._secret[:64], digest_size=length)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def load_or_create_secret(path: Path) -> str:
    """The secret in `path`, created (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
