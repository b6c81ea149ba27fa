"""Credential change stamps (signing secrets take effect at once on every API replica).

Revision ID: 0007_credential_stamps
Revises: 0006_webhook_replay_key
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0007_credential_stamps"
down_revision = "0006_webhook_replay_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credential_stamps",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("stamp", sa.String(36), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_credential_stamps_tenant_name"),
    )
    enable_tenant_rls(op, "credential_stamps")


def downgrade() -> None:
    op.drop_table("credential_stamps")
