"""handoff: conversations handed to people of the team, and the posts in their rooms

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
# 0007 (team secrets) lands with the same issue; until then this branch tests against 0006.
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("conversation_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("room_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("room", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("room_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("thread", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("timeout_minutes", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_answer_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["bot_id"], ["bot.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index("ix_handoff_open", ["closed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_bot_id"), ["bot_id"], unique=False)
    op.create_table(
        "handoff_post",
        sa.Column("room_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("room", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("handoff_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["handoff_id"], ["handoff.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_kind", "room", "message_id"),
    )
    with op.batch_alter_table("handoff_post", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handoff_post_handoff_id"), ["handoff_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("handoff_post", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_post_handoff_id"))
    op.drop_table("handoff_post")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_bot_id"))
        batch_op.drop_index("ix_handoff_open")
    op.drop_table("handoff")
