"""What platforms report of sent messages: kept per deployment, forward only, unknown ones told
apart, forgotten by housekeeping."""

from __future__ import annotations

from datetime import timedelta

from storage import deliveries
from storage.database import Database
from storage.tables import utcnow


async def _report(db: Database, platform_id: str, status: str, error: str | None = None) -> bool:
    async with db.write_conn() as conn:
        return await deliveries.report(
            conn, deployment_id="d_1", platform_id=platform_id, status=status, error=error
        )


async def _status(db: Database, platform_id: str, deployment_id: str = "d_1") -> str | None:
    async with db.read_conn() as conn:
        return await deliveries.status_of(
            conn, deployment_id=deployment_id, platform_id=platform_id
        )


async def test_reports_move_a_sent_message_forward_never_back(any_db: Database) -> None:
    for _ in range(2):  # a repeat changes nothing
        await any_db.run_write(
            lambda c: deliveries.remember(
                c, deployment_id="d_1", platform_id="wamid.1", outbox_id=7
            )
        )
    assert await _status(any_db, "wamid.1") == "sent"
    assert await _report(any_db, "wamid.1", "read")
    assert await _report(any_db, "wamid.1", "delivered")  # late, out of order: known, ignored
    assert await _status(any_db, "wamid.1") == "read"
    assert await _report(any_db, "wamid.1", "failed", "x" * 900)
    assert await _status(any_db, "wamid.1") == "failed"


async def test_a_report_of_a_message_never_sent_records_nothing(any_db: Database) -> None:
    await any_db.run_write(
        lambda c: deliveries.remember(c, deployment_id="d_2", platform_id="wamid.9", outbox_id=1)
    )
    assert not await _report(any_db, "wamid.unknown", "delivered")
    assert not await _report(any_db, "wamid.9", "read")  # another deployment's message
    assert await _status(any_db, "wamid.unknown") is None
    assert await _status(any_db, "wamid.9", "d_2") == "sent"


async def test_housekeeping_forgets_old_reports(any_db: Database) -> None:
    await any_db.run_write(
        lambda c: deliveries.remember(c, deployment_id="d_1", platform_id="wamid.2", outbox_id=2)
    )
    await any_db.run_write(lambda c: deliveries.expire(c, before=utcnow() - timedelta(days=1)))
    assert await _status(any_db, "wamid.2") == "sent"
    await any_db.run_write(lambda c: deliveries.expire(c, before=utcnow() + timedelta(days=1)))
    assert await _status(any_db, "wamid.2") is None
