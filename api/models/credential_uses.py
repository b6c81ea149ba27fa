"""Credential uses of runs, waiting to be written to the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id


class CredentialUse(TenantScoped, Base):
    """One node of one run used one credential (reported once however often it was used).

    Rows of a run are written to the audit log together, one entry per credential, once the
    run has ended; ``audited_at`` marks the rows an entry covers.
    """

    __tablename__ = "credential_uses"
    __table_args__ = (
        UniqueConstraint("tenant_id", "flow_run_id", "credential", "node_id", name="uq_credential_uses_use"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    flow_run_id: Mapped[str] = mapped_column(String(36), nullable=False)
    credential: Mapped[str] = mapped_column(String(100), nullable=False)
    credential_type: Mapped[str] = mapped_column(String(100), nullable=False)
    node_id: Mapped[str] = mapped_column(String(100), nullable=False)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True, nullable=True)
