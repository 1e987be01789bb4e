"""agents.mcp_servers: the MCP tool servers of each agent

Revision ID: 0004_mcp
Revises: 0003_wecombot
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_mcp"
down_revision = "0003_wecombot"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mcp_servers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("mcp_servers")
