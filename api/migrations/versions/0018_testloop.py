"""Workflow tests: a tenant may require a draft's tests to pass before it is published.

Revision ID: 0018_testloop
Revises: 0017_slo
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_testloop"
down_revision = "0017_slo"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("require_passing_tests", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("require_passing_tests")
