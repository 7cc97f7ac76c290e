"""turn traces: what each step of a turn did, kept on the turn's answer; a conversation's
messages by time (exports of a window)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 14:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trace", sa.JSON(none_as_null=True), nullable=True))
        batch_op.create_index(
            "ix_message_conversation_time", ["conversation_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_conversation_time")
        batch_op.drop_column("trace")
