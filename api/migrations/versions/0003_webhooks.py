"""Webhooks and webhook deliveries.

Revision ID: 0003_webhooks
Revises: 0002_workflows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0003_webhooks"
down_revision = "0002_workflows"
branch_labels = None
depends_on = None


def _tenant_fk() -> sa.Column:
    return sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False, index=True)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant_fk(),
        sa.Column("workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("node_id", sa.String(100), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("workflow_id", "node_id", name="uq_webhooks_workflow_node"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        _tenant_fk(),
        sa.Column("webhook_id", sa.String(36), sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("workflow_id", sa.String(36), nullable=False),
        sa.Column("node_id", sa.String(100), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("replay_of", sa.String(36), nullable=True),
        sa.Column("run_id", sa.String(36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("dispatched_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("webhook_id", "dedupe_key", name="uq_webhook_deliveries_dedupe"),
    )
    enable_tenant_rls(op, "webhooks")
    enable_tenant_rls(op, "webhook_deliveries")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("GRANT USAGE, SELECT ON SEQUENCE webhook_deliveries_seq_seq TO gorax_app")


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
