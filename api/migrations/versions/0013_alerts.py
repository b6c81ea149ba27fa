"""Alerts: per-tenant alert rules, their history, and a workflow's error workflow.

Revision ID: 0013_alerts
Revises: 0012_mfa
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0013_alerts"
down_revision = "0012_mfa"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column:
    return sa.Column(
        "tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
    )


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("window_minutes", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Integer(), nullable=True),
        sa.Column("workflow_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.JSON(), nullable=False),
        sa.Column("cooldown_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_sent_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        sa.Column("rule_id", sa.String(36), sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True),
        sa.Column("at", UTCDateTime(), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("runs", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("test", sa.Boolean(), nullable=False),
    )
    op.add_column("workflows", sa.Column("on_failure_workflow_id", sa.String(36), nullable=True))
    enable_tenant_rls(op, "alert_rules")
    enable_tenant_rls(op, "alert_events")


def downgrade() -> None:
    op.drop_column("workflows", "on_failure_workflow_id")
    op.drop_table("alert_events")
    op.drop_table("alert_rules")
