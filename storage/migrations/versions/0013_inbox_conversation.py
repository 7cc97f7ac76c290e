"""inbox.conversation: the conversation a message belongs to, so that the pending messages of one
conversation are found and answered in order by whichever worker holds it; inbox.worker and
outbox.worker: the worker that accepted a message or stored a reply, so that only those of a
worker that is gone are taken over

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(
            sa.Column("conversation", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
    # Messages still to answer name their conversation too (finished ones expire unread).
    conversation = {
        "postgresql": "(payload::jsonb) -> 'address' ->> 'conversation'",
        "sqlite": "json_extract(payload, '$.address.conversation')",
    }[op.get_bind().dialect.name]
    op.execute(f"UPDATE inbox SET conversation = {conversation} WHERE status = 'pending'")
    op.create_index(
        "ix_inbox_pending_conversation",
        "inbox",
        ["deployment_id", "conversation", "id"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_pending_conversation", table_name="inbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("worker")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("worker")
        batch.drop_column("conversation")
