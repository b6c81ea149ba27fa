"""Human tasks: due times, viewers and a version; credential uses waiting for the audit log.

Revision ID: 0005_due_times_credential_uses
Revises: 0004_human_tasks
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import enable_tenant_rls

revision = "0005_due_times_credential_uses"
down_revision = "0004_human_tasks"
branch_labels = None
depends_on = None

_tasks = sa.table(
    "human_tasks",
    sa.column("id", sa.String), sa.column("status", sa.String),
    sa.column("escalation", sa.JSON), sa.column("escalation_done", sa.Integer),
    sa.column("created_at", UTCDateTime()), sa.column("expires_at", UTCDateTime()),
    sa.column("resumed_at", UTCDateTime()), sa.column("due_at", UTCDateTime()),
    sa.column("viewers", sa.JSON),
)


def _due(row: Any, now: datetime) -> datetime | None:
    # What api.services.human_tasks.next_due computes; written out here, as migrations are.
    if row.status in ("decided", "expired") and row.resumed_at is None:
        return now
    if row.status != "open":
        return None
    times = [row.expires_at] if row.expires_at else []
    steps = row.escalation or []
    if row.escalation_done < len(steps):
        times.append(row.created_at + timedelta(seconds=float(steps[row.escalation_done]["after_seconds"])))
    return min(times) if times else None


def _backfill() -> None:
    bind = op.get_bind()
    now = datetime.now(timezone.utc)
    for row in bind.execute(sa.select(_tasks)).all():
        done = (row.escalation or [])[: row.escalation_done]
        viewers = sorted({who for step in done for who in (step.get("notify") or [])})
        bind.execute(sa.update(_tasks).where(_tasks.c.id == row.id)
                     .values(due_at=_due(row, now), viewers=viewers))


def upgrade() -> None:
    with op.batch_alter_table("human_tasks") as batch:
        batch.add_column(sa.Column("viewers", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")))
        batch.create_index("ix_human_tasks_due_at", ["due_at"])
    _backfill()
    op.create_table(
        "credential_uses",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("flow_run_id", sa.String(36), nullable=False),
        sa.Column("credential", sa.String(100), nullable=False),
        sa.Column("credential_type", sa.String(100), nullable=False),
        sa.Column("node_id", sa.String(100), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("audited_at", UTCDateTime(), nullable=True, index=True),
        sa.UniqueConstraint("tenant_id", "flow_run_id", "credential", "node_id",
                            name="uq_credential_uses_use"),
    )
    enable_tenant_rls(op, "credential_uses")


def downgrade() -> None:
    op.drop_table("credential_uses")
    with op.batch_alter_table("human_tasks") as batch:
        batch.drop_index("ix_human_tasks_due_at")
        batch.drop_column("version")
        batch.drop_column("due_at")
        batch.drop_column("viewers")
