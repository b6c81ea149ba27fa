"""Workflows and workflow versions.

Revision ID: 0002_workflows
Revises: 0001_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0002_workflows"
down_revision = "0001_identity"
branch_labels = None
depends_on = None


def _tenant_fk() -> sa.Column:
    return sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False, index=True)


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant_fk(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=True),
        sa.Column("deployment_id", sa.String(36), nullable=True),
        sa.Column("created_by", sa.String(120), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False, index=True),
    )
    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant_fk(),
        sa.Column("workflow_id", sa.String(36),
                  sa.ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(120), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("workflow_id", "number", name="uq_workflow_versions_workflow_number"),
    )
    enable_tenant_rls(op, "workflows")
    enable_tenant_rls(op, "workflow_versions")


def downgrade() -> None:
    op.drop_table("workflow_versions")
    op.drop_table("workflows")
