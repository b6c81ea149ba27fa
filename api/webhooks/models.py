"""Webhook endpoints (one per published ``trigger.webhook`` node) and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base, TenantScoped, UTCDateTime, new_id, utcnow


class Webhook(TenantScoped, Base):
    """The public endpoint of one webhook trigger node, with the node's published config."""

    __tablename__ = "webhooks"
    __table_args__ = (UniqueConstraint("workflow_id", "node_id", name="uq_webhooks_workflow_node"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("workflows.id", ondelete="CASCADE"), index=True, nullable=False
    )
    node_id: Mapped[str] = mapped_column(String(100), nullable=False)
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    active: Mapped[bool] = mapped_column(default=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class WebhookDelivery(TenantScoped, Base):
    """One request to a webhook URL: what arrived, the verdict, and whether it was dispatched.

    ``seq`` orders dispatch. For accepted deliveries two keys are unique per webhook, so the
    same delivery cannot be stored (or run) twice: ``dedupe_key``, the sender's delivery id (a
    sender's retry), and ``replay_key``, the digest of what the signature covers (a captured
    delivery sent again under a new, unsigned delivery id).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "dedupe_key", name="uq_webhook_deliveries_dedupe"),
        Index("uq_webhook_deliveries_replay", "webhook_id", "replay_key", unique=True),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, nullable=False, default=new_id)
    webhook_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhooks.id", ondelete="CASCADE"), index=True, nullable=False
    )
    workflow_id: Mapped[str] = mapped_column(String(36), nullable=False)
    node_id: Mapped[str] = mapped_column(String(100), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    replay_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # accepted (waiting for dispatch), dispatched, filtered, bad_signature, duplicate, rejected
    status: Mapped[str] = mapped_column(String(20), index=True, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    method: Mapped[str] = mapped_column(String(10), nullable=False)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    query: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    replay_of: Mapped[str | None] = mapped_column(String(36), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class NewDelivery:
    """A delivery as the receiver builds it, before it is stored: the columns of a
    :class:`WebhookDelivery` row as plain attributes (``None`` where not given; the writer fills
    column defaults and inserts the values). An ORM instance (instance state, instrumented
    attributes) cost a tenth of a delivery's CPU to build, for a row no session ever holds."""

    __slots__ = tuple(column.key for column in WebhookDelivery.__table__.columns)
    _columns: ClassVar[frozenset[str]] = frozenset(__slots__)

    # The columns' types, for the type checker (declared only: the slots hold the values).
    seq: int | None
    id: str
    tenant_id: str
    webhook_id: str
    workflow_id: str
    node_id: str
    external_id: str | None
    dedupe_key: str | None
    replay_key: str | None
    status: str
    reason: str | None
    method: str
    headers: dict[str, Any]
    query: dict[str, Any]
    body: bytes
    payload: dict[str, Any] | None
    replay_of: str | None
    run_id: str | None
    attempts: int
    received_at: datetime
    dispatched_at: datetime | None

    def __init__(self, **values: Any) -> None:
        unknown = values.keys() - self._columns
        if unknown:
            raise TypeError(f"not a webhook delivery column: {', '.join(sorted(unknown))}")
        for name in self.__slots__:
            setattr(self, name, values.get(name))


class CredentialStamp(TenantScoped, Base):
    """A new random ``stamp`` each time a credential is created, changed or deleted through the
    API: every API replica's cached signing secret carries the stamp it was read under, and a
    delivery is committed only if that stamp is still the current one."""

    __tablename__ = "credential_stamps"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_credential_stamps_tenant_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    stamp: Mapped[str] = mapped_column(String(36), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
