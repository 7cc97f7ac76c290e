"""The audit trail: who changed what, when, with before and after (secrets redacted)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import AuditEvent

_SECRET_WORDS = ("token", "secret", "password", "credential", "api_key", "key_hash")
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """Replace the values of secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {
            k: REDACTED if any(w in k.lower() for w in _SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        team_id: int,
        actor: str,
        action: str,
        target: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        self.session.add(
            AuditEvent(
                team_id=team_id,
                actor=actor,
                action=action,
                target=target,
                before=redact(before) if before is not None else None,
                after=redact(after) if after is not None else None,
            )
        )

    async def events(
        self,
        team_id: int,
        *,
        target: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.team_id == team_id)
        if target is not None:
            query = query.where(AuditEvent.target == target)
        if since is not None:
            query = query.where(AuditEvent.created_at >= since)
        query = query.order_by(col(AuditEvent.id).desc()).limit(limit)
        return list((await self.session.exec(query)).all())
