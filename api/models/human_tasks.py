"""Human tasks: decisions a suspended run waits for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class HumanTask(TenantScoped, Base):
    """One approval request of one run (per node and loop iteration).

    Every update compares ``version`` (SQLAlchemy's optimistic concurrency): when a person, the
    timer of another API replica or a cancellation changed the task first, the update matches
    no row and raises ``StaleDataError``, so each decision and each due action happens once.
    """

    __tablename__ = "human_tasks"
    __table_args__ = (UniqueConstraint("tenant_id", "flow_run_id", "node_key", name="uq_human_tasks_run_node"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_run_id: Mapped[str] = mapped_column(String(36), index=True, nullable=False)
    node_id: Mapped[str] = mapped_column(String(100), nullable=False)
    node_key: Mapped[str] = mapped_column(String(200), nullable=False)
    node_name: Mapped[str] = mapped_column(String(200), nullable=False)
    workflow_id: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    workflow_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    assignees: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    channels: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    email_credential: Mapped[str | None] = mapped_column(String(100), nullable=True)
    escalation: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    # How many escalation steps have acted so far.
    escalation_done: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Who may see the task without deciding it: the people escalation steps notified.
    viewers: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    # open, decided, expired, cancelled
    status: Mapped[str] = mapped_column(String(20), default="open", index=True, nullable=False)
    decision: Mapped[str | None] = mapped_column(String(100), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: A gated tool call's arguments as the reviewer approved them (None: as the model gave them).
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # When the decision reached Prefect (the run was resumed); None while that is pending.
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notifications: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, nullable=False)
    # When the timer next acts on the task: the next escalation step or the expiry of an open
    # task, a retry of handing a decision to the run; None when nothing is due.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}
