"""Single sign-on by OpenID Connect: per-tenant provider, linked identities, sign-ins in flight.

Revision ID: 0011_sso
Revises: 0010_oauth
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0011_sso"
down_revision = "0010_oauth"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column:
    return sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                     nullable=False, index=True)


def upgrade() -> None:
    op.create_table(
        "sso_configs",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("discovery_url", sa.String(2000), nullable=False),
        sa.Column("client_id", sa.String(400), nullable=False),
        sa.Column("client_secret_sealed", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(400), nullable=False),
        sa.Column("allowed_domains", sa.JSON(), nullable=False),
        sa.Column("role_claim", sa.String(200), nullable=False),
        sa.Column("role_mapping", sa.JSON(), nullable=False),
        sa.Column("default_role", sa.String(20), nullable=True),
        sa.Column("jit_enabled", sa.Boolean(), nullable=False),
        sa.Column("sso_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", name="uq_sso_configs_tenant_id"),
    )
    enable_tenant_rls(op, "sso_configs")
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("issuer", sa.String(2000), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "issuer", "subject", name="uq_sso_identities_subject"),
    )
    enable_tenant_rls(op, "sso_identities")
    op.create_table(
        "sso_login_states",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(200), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("redirect_uri", sa.String(2000), nullable=False),
        sa.Column("next_path", sa.String(2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    enable_tenant_rls(op, "sso_login_states")


def downgrade() -> None:
    op.drop_table("sso_login_states")
    op.drop_table("sso_identities")
    op.drop_table("sso_configs")
