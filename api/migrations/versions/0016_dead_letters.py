"""Dead letters: webhook deliveries and scheduled runs that could not become a run.

Revision ID: 0016_dead_letters
Revises: 0015_quotas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0016_dead_letters"
down_revision = "0015_quotas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("reference", sa.String(80), nullable=False),
        sa.Column("workflow_id", sa.String(36), nullable=False, index=True),
        sa.Column("node_id", sa.String(100), nullable=True),
        sa.Column("webhook_id", sa.String(36), nullable=True),
        sa.Column("delivery_id", sa.String(36), nullable=True),
        sa.Column("flow_run_id", sa.String(36), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(80), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("replay_delivery_id", sa.String(36), nullable=True),
        sa.Column("replay_run_id", sa.String(36), nullable=True),
        sa.UniqueConstraint("reference", name="uq_dead_letters_reference"),
    )
    op.create_index("ix_dead_letters_tenant_status", "dead_letters", ["tenant_id", "status", "last_seen_at"])
    enable_tenant_rls(op, "dead_letters")


def downgrade() -> None:
    op.drop_table("dead_letters")
