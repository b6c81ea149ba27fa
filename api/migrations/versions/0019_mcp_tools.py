"""A workflow's MCP tool setting: whether its published version is a tool of the tenant's MCP
server, under which name and description.

Revision ID: 0019_mcp_tools
Revises: 0018_testloop
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_mcp_tools"
down_revision = "0018_testloop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workflows", sa.Column("mcp_tool", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("mcp_tool")
