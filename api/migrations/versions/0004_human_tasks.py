"""Human tasks.

Revision ID: 0004_human_tasks
Revises: 0003_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0004_human_tasks"
down_revision = "0003_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "human_tasks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("flow_run_id", sa.String(36), nullable=False, index=True),
        sa.Column("node_id", sa.String(100), nullable=False),
        sa.Column("node_key", sa.String(200), nullable=False),
        sa.Column("node_name", sa.String(200), nullable=False),
        sa.Column("workflow_id", sa.String(100), nullable=True, index=True),
        sa.Column("workflow_name", sa.String(200), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("assignees", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("email_credential", sa.String(100), nullable=True),
        sa.Column("escalation", sa.JSON(), nullable=False),
        sa.Column("escalation_done", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("decision", sa.String(100), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("resumed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("notifications", sa.JSON(), nullable=False),
        sa.UniqueConstraint("tenant_id", "flow_run_id", "node_key", name="uq_human_tasks_run_node"),
    )
    enable_tenant_rls(op, "human_tasks")


def downgrade() -> None:
    op.drop_table("human_tasks")
