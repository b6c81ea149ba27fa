"""Service-level objectives per workflow (the operations dashboard's error budgets).

Revision ID: 0017_slo
Revises: 0016_dead_letters
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0017_slo"
down_revision = "0016_dead_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_slos",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=True),
    )
    enable_tenant_rls(op, "workflow_slos")


def downgrade() -> None:
    op.drop_table("workflow_slos")
