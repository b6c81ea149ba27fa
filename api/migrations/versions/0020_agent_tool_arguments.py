"""Human tasks of gated agent tool calls: the arguments a reviewer approved them with.

Revision ID: 0020_agent_tool_arguments
Revises: 0019_mcp_tools
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_agent_tool_arguments"
down_revision = "0019_mcp_tools"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("human_tasks", sa.Column("arguments", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("human_tasks", "arguments")
