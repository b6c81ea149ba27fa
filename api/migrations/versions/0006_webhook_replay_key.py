"""Webhook deliveries: the replay key (digest of the signed content), unique per webhook.

Revision ID: 0006_webhook_replay_key
Revises: 0005_invitations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_webhook_replay_key"
down_revision = "0005_invitations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_deliveries", sa.Column("replay_key", sa.String(64), nullable=True))
    # A unique index, not a constraint: SQLite adds one without rebuilding the table.
    op.create_index("uq_webhook_deliveries_replay", "webhook_deliveries",
                    ["webhook_id", "replay_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_webhook_deliveries_replay", table_name="webhook_deliveries")
    op.drop_column("webhook_deliveries", "replay_key")
