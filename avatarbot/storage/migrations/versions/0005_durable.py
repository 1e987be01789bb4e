"""durable intake, outbox and leases

Revision ID: 0005_durable
Revises: 0004_mcp
Create Date: 2026-12-03 07:31:08

Inbox rows keep the parsed message (recovery after a crash), tasks and inbox rows get a
lease, and `deliveries` is the outbox of replies a chat is owed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_durable"
down_revision = "0004_mcp"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("group_key", sa.String(length=250), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=True),
        sa.Column("task_id", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        _ts("lease_until"),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        _ts("expires_at"),
        _ts("sent_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("group_key", "seq", name=op.f("uq_deliveries_group_key")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_task_id"), ["task_id"], unique=False)

    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(_ts("lease_until"))
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        # The default only filled existing rows; the models give the value from now on.
        batch_op.alter_column("attempts", server_default=None)

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(_ts("lease_until"))


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("lease_until")

    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("attempts")
        batch_op.drop_column("payload")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_task_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_status"))

    op.drop_table("deliveries")
