"""Team secrets: the credentials bots' tools use (`ToolSpec.auth` names one), stored encrypted
with the service's cipher and revealed in clear only for the moment of a tool call.

Every tool call reveals its secret, and a call should cost the platform at most a millisecond,
so the vault keeps recently used ciphertexts (and "not set") in memory: a call decrypts
(~12 µs) instead of asking the database. Writes go through the vault, which forgets what it
kept of that secret.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from builders.spec import SECRET_NAME
from runtime.cipher import Cipher
from storage.audit import AuditRepository
from storage.database import Database
from storage.secrets import SecretRepository, SecretRow, Stored

logger = logging.getLogger(__name__)

MAX_SECRET_CHARS = 4096
CACHE_TTL_S = 30.0
CACHE_SIZE = 10_000
NAME_RULE = "1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit"


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a secret (None: it can). Never quotes the name: a value pasted in
    its place must not be echoed."""
    if SECRET_NAME.fullmatch(name):
        return None
    return f"that is not a secret name: use {NAME_RULE}"


def value_problem(value: str) -> str | None:
    """Why `value` cannot be a secret's value (None: it can). Spaces around it do not count
    (`store` drops them: a pasted value often ends in a tab or newline); the rest is 1 to
    `MAX_SECRET_CHARS` visible ASCII characters, as credentials sent in an HTTP header are (a
    header cannot carry others, and an error echoing one would show it escaped, past the mask).
    Never quotes the value."""
    value = value.strip()
    if not value:
        return "the value is empty"
    if len(value) > MAX_SECRET_CHARS:
        return f"the value is too long: at most {MAX_SECRET_CHARS} characters"
    if not all("!" <= char <= "~" for char in value):
        return (
            "the value may hold only visible ASCII characters, without spaces or line breaks "
            "(it is sent in an HTTP header)"
        )
    return None


class SecretVault:
    """The team secrets (a `runtime.tools.base.SecretSource` for the tool gateway).

    The cache is per process: a change made through another worker's vault is seen here within
    `ttl_s` (30 s by default); a change made through this vault, at once."""

    def __init__(
        self,
        db: Database,
        cipher: Cipher,
        *,
        ttl_s: float = CACHE_TTL_S,
        size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._ttl_s = ttl_s
        self._size = size
        self._clock = clock
        # (team, name) -> (ciphertext, or None for "not set"; when it stops being trusted)
        self._kept: OrderedDict[tuple[int, str], tuple[bytes | None, float]] = OrderedDict()
        self._generation = 0  # grows with every write: a read that overlapped one is not kept

    async def reveal(self, team_id: int, name: str) -> str | None:
        """The secret's value, or None when it is not set (or cannot be decrypted, logged)."""
        sealed = await self._sealed(team_id, name)
        if sealed is None:
            return None
        try:
            return self._cipher.decrypt(sealed)
        except ValueError:
            logger.error(
                "the secret %s of team %d cannot be decrypted with this service's key",
                name,
                team_id,
            )
            return None

    async def _sealed(self, team_id: int, name: str) -> bytes | None:
        key = (team_id, name)
        kept = self._kept.get(key)
        now = self._clock()
        if kept is not None and kept[1] > now:
            self._kept.move_to_end(key)
            return kept[0]
        generation = self._generation
        async with self._db.read() as session:
            sealed = await SecretRepository(session).ciphertext(team_id, name)
        if generation == self._generation:  # no write meanwhile: what was read is current
            self._kept[key] = (sealed, now + self._ttl_s)
            self._kept.move_to_end(key)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
        return sealed

    async def store(self, team_id: int, name: str, value: str, *, actor: str) -> Stored:
        """Create or replace a secret, with its audit event (the name and that it changed,
        never the value) in the same transaction. Raises `ValueError` for a bad name or value
        (callers check first, with `name_problem` and `value_problem`)."""
        problem = name_problem(name) or value_problem(value)
        if problem:
            raise ValueError(problem)
        sealed = self._cipher.encrypt(value.strip())
        async with self._db.write() as session:
            stored = await SecretRepository(session).set(team_id, name, sealed, by=actor)
            await AuditRepository(session).record(
                team_id=team_id,
                actor=actor,
                action="secret.set",
                target=f"secret:{name}",
                after={"name": name, "change": "created" if stored.created else "replaced"},
            )
        self._forget(team_id, name)
        return stored

    async def remove(self, team_id: int, name: str, *, actor: str) -> bool:
        """Delete a secret (audited); False when there was none."""
        async with self._db.write() as session:
            removed = await SecretRepository(session).remove(team_id, name)
            if removed:
                await AuditRepository(session).record(
                    team_id=team_id,
                    actor=actor,
                    action="secret.remove",
                    target=f"secret:{name}",
                    before={"name": name},
                )
        self._forget(team_id, name)
        return removed

    async def listed(self, team_id: int) -> list[SecretRow]:
        """The team's secrets: names, when and by whom they were set (never a value)."""
        async with self._db.read() as session:
            return await SecretRepository(session).rows(team_id)

    def _forget(self, team_id: int, name: str) -> None:
        self._generation += 1
        self._kept.pop((team_id, name), None)
