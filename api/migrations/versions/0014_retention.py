"""Retention: tenant policies, job reports, and the audit chain's anchor after pruning.

The app role still cannot DELETE audit events: it prunes them only through the function
``gorax_prune_audit``, which deletes the oldest events of the calling transaction's tenant up to
a seq (never the newest event) and records the last deleted event's seq and hash as the tenant's
anchor in the same statement, so the chain stays verifiable.

Revision ID: 0014_retention
Revises: 0013_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.base import UTCDateTime
from api.db.rls import APP_ROLE, enable_tenant_rls, is_postgres

revision = "0014_retention"
down_revision = "0013_alerts"
branch_labels = None
depends_on = None


def _tenant(**kwargs: object) -> sa.Column:
    return sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id", ondelete="CASCADE"), **kwargs)  # type: ignore[arg-type]


_PRUNE = f"""
CREATE OR REPLACE FUNCTION gorax_prune_audit(p_tenant text, p_through_seq integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  head integer;
  cut_hash text;
  removed integer;
BEGIN
  IF p_tenant IS DISTINCT FROM current_setting('app.tenant_id', true) THEN
    RAISE EXCEPTION 'audit events of tenant % can only be pruned in its own transaction', p_tenant;
  END IF;
  SELECT max(seq) INTO head FROM audit_events WHERE tenant_id = p_tenant;
  IF head IS NULL OR p_through_seq >= head THEN
    RAISE EXCEPTION 'the newest audit event (seq %) is never pruned', head;
  END IF;
  SELECT hash INTO cut_hash FROM audit_events WHERE tenant_id = p_tenant AND seq = p_through_seq;
  IF cut_hash IS NULL THEN
    RETURN 0;
  END IF;
  DELETE FROM audit_events WHERE tenant_id = p_tenant AND seq <= p_through_seq;
  GET DIAGNOSTICS removed = ROW_COUNT;
  INSERT INTO audit_anchors (tenant_id, seq, hash, pruned_at) VALUES (p_tenant, p_through_seq, cut_hash, now())
    ON CONFLICT (tenant_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, pruned_at = EXCLUDED.pruned_at;
  RETURN removed;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(nullable=False, index=True, unique=True),
        sa.Column("execution_days", sa.Integer(), nullable=True),
        sa.Column("executions_per_workflow", sa.Integer(), nullable=True),
        sa.Column("step_data_days", sa.Integer(), nullable=True),
        sa.Column("delivery_days", sa.Integer(), nullable=True),
        sa.Column("deliveries_per_webhook", sa.Integer(), nullable=True),
        sa.Column("audit_days", sa.Integer(), nullable=True),
        sa.Column("step_data_pruned_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=True),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(nullable=False, index=True),
        sa.Column("started_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deleted", sa.JSON(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "audit_anchors",
        _tenant(primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("pruned_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_tenant_received", "webhook_deliveries", ["tenant_id", "received_at"])
    enable_tenant_rls(op, "retention_policies")
    enable_tenant_rls(op, "retention_runs")
    # Read-only for the app: only gorax_prune_audit writes anchors.
    enable_tenant_rls(op, "audit_anchors", append_only=True)
    if is_postgres(op):
        op.execute(f"REVOKE INSERT ON TABLE audit_anchors FROM {APP_ROLE}")
        op.execute(_PRUNE)
        op.execute("REVOKE ALL ON FUNCTION gorax_prune_audit(text, integer) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION gorax_prune_audit(text, integer) TO {APP_ROLE}")


def downgrade() -> None:
    if is_postgres(op):
        op.execute("DROP FUNCTION IF EXISTS gorax_prune_audit(text, integer)")
    op.drop_index("ix_webhook_deliveries_tenant_received", table_name="webhook_deliveries")
    for table in ("audit_anchors", "retention_runs", "retention_policies"):
        op.drop_table(table)
