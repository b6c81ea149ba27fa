"""Per-tenant monthly agent budgets (tokens, cost, tool calls) and what each tenant used.

Revision ID: 0021_agent_quotas
Revises: 0020_agent_tool_arguments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0021_agent_quotas"
down_revision = "0020_agent_tool_arguments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenant_quotas", sa.Column("agent_tokens_per_month", sa.BigInteger(), nullable=True))
    op.add_column("tenant_quotas", sa.Column("agent_cost_usd_per_month", sa.Float(), nullable=True))
    op.add_column("tenant_quotas", sa.Column("agent_tool_calls_per_month", sa.BigInteger(), nullable=True))
    op.create_table(
        "tenant_agent_usage",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("tool_calls", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "month", name="uq_tenant_agent_usage_month"),
    )
    enable_tenant_rls(op, "tenant_agent_usage")


def downgrade() -> None:
    op.drop_table("tenant_agent_usage")
    op.drop_column("tenant_quotas", "agent_tool_calls_per_month")
    op.drop_column("tenant_quotas", "agent_cost_usd_per_month")
    op.drop_column("tenant_quotas", "agent_tokens_per_month")
