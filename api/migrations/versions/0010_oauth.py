"""Pending OAuth authorizations (the connect flow's state and PKCE verifier, until its callback).

Revision ID: 0010_oauth
Revises: 0009_shared_drafts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0010_oauth"
down_revision = "0009_shared_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_authorizations",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("credential", sa.String(100), nullable=False),
        sa.Column("actor_type", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
    )
    enable_tenant_rls(op, "oauth_authorizations")


def downgrade() -> None:
    op.drop_table("oauth_authorizations")
