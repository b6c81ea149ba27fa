"""Workflow drafts shared by every API replica: the collaboration document's Yjs updates.

Revision ID: 0009_shared_drafts
Revises: 0008_due_times_credential_uses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls, is_postgres

revision = "0009_shared_drafts"
down_revision = "0008_due_times_credential_uses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_draft_updates",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("workflow_id", sa.String(36), sa.ForeignKey("workflows.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_workflow_draft_updates_workflow_seq", "workflow_draft_updates",
                    ["workflow_id", "seq"])
    enable_tenant_rls(op, "workflow_draft_updates")
    if is_postgres(op):
        # The app role inserts rows, so it needs the sequence behind ``seq``.
        op.execute("GRANT USAGE, SELECT ON SEQUENCE workflow_draft_updates_seq_seq TO gorax_app")


def downgrade() -> None:
    op.drop_table("workflow_draft_updates")
