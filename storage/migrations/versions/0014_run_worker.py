"""test and evaluation runs record the worker running them: the leader fails only the runs of
workers that are gone

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 05:37:48.998551
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
        batch_op.create_index(
            "ix_eval_run_running_worker",
            ["worker"],
            unique=False,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )

    with op.batch_alter_table("test_run", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("worker", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True)
        )
        batch_op.create_index(
            "ix_test_run_running",
            ["worker"],
            unique=False,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("test_run", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_test_run_running",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_column("worker")

    with op.batch_alter_table("eval_run", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_eval_run_running_worker",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_column("worker")
