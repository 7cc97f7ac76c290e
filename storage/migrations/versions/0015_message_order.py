"""a conversation's messages indexed by (conversation, id), in place of (conversation): its
newest messages are read backwards from the end on PostgreSQL too (where the newest message's id
of a quiet conversation walked the primary key back through every later message)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 09:55:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_conversation_order", ["conversation_id", "id"], unique=False
        )
        batch_op.drop_index("ix_message_conversation_id")


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_conversation_id", ["conversation_id"], unique=False)
        batch_op.drop_index("ix_message_conversation_order")
