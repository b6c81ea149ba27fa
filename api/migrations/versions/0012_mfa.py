"""Multi-factor authentication: TOTP factors, recovery codes, sign-in challenges, tenant policy.

Revision ID: 0012_mfa
Revises: 0011_sso
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls, grant_table

revision = "0012_mfa"
down_revision = "0011_sso"
branch_labels = None
depends_on = None


def _user_fk(**kwargs: Any) -> sa.Column:
    return sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), **kwargs)


def upgrade() -> None:
    op.create_table(
        "user_totp",
        _user_fk(primary_key=True),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        _user_fk(nullable=False, index=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "mfa_challenges",
        sa.Column("id", sa.String(36), primary_key=True),
        _user_fk(nullable=False, index=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("purpose", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "tenant_mfa_policies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True, unique=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(80), nullable=True),
    )
    for table in ("user_totp", "mfa_recovery_codes", "mfa_challenges"):
        grant_table(op, table)
    enable_tenant_rls(op, "tenant_mfa_policies")


def downgrade() -> None:
    for table in ("tenant_mfa_policies", "mfa_challenges", "mfa_recovery_codes", "user_totp"):
        op.drop_table(table)
