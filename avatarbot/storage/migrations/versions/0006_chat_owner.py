"""digital humans made from a chat photo remember whose face they are

Revision ID: 0006_chat_owner
Revises: 0005_durable
Create Date: 2026-12-03 11:20:00

`digital_humans.chat_owner` ("<channel>:<platform user id>") marks a portrait a chat user sent:
visible to that user in chat and to superusers, never shared with other console users.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_chat_owner"
down_revision = "0005_durable"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digital_humans") as batch:
        batch.add_column(sa.Column("chat_owner", sa.String(length=200), nullable=True))
        batch.create_index("ix_digital_humans_chat_owner", ["chat_owner"])


def downgrade() -> None:
    with op.batch_alter_table("digital_humans") as batch:
        batch.drop_index("ix_digital_humans_chat_owner")
        batch.drop_column("chat_owner")
