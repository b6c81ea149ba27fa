"""The audit log: append hash-chained events, list them, verify a tenant's chain.

Each tenant has its own chain: event ``seq`` n stores ``prev_hash`` (event n-1's hash, or 64
zeros) and ``hash = sha256(prev_hash + canonical JSON of the event)``. Changing, removing or
reordering any stored event breaks every later hash, which :func:`verify_chain` reports.
On PostgreSQL the app role cannot UPDATE or DELETE audit rows at all.

Retention prunes a tenant's oldest events with :func:`prune_through` (on PostgreSQL through the
``gorax_prune_audit`` function, the only way the app can delete them): the seq and hash of the
last pruned event become the tenant's :class:`~api.models.audit.AuditAnchor`, and verification
starts from it, so a change to any kept event (or a removed one) is still found.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.models.audit import AuditAnchor, AuditEvent

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditContext:
    """Who acts and from where; built per request by :func:`api.auth.deps.audit_context`."""

    actor_type: str
    actor_id: str | None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, actor_id: str = "system") -> AuditContext:
        """The context of CLI commands and background jobs."""
        return cls(actor_type="system", actor_id=actor_id)


def _plain(value: Any) -> Any:
    # Round-trip through JSON so what is hashed equals what the database gives back.
    return None if value is None else json.loads(json.dumps(value, default=str))


def _event_hash(event: AuditEvent) -> str:
    payload = {
        "tenant_id": event.tenant_id,
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "before": event.before,
        "after": event.after,
        "details": event.details,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((event.prev_hash + canonical).encode()).hexdigest()


async def record(
    session: AsyncSession,
    *,
    tenant_id: str,
    action: str,
    context: AuditContext,
    resource_type: str | None = None,
    resource_id: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "success",
) -> AuditEvent:
    """Append an event in the caller's transaction (the caller commits with its change)."""
    if session.bind.dialect.name == "postgresql":
        # One appender per tenant chain at a time; released when the transaction ends.
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"audit:{tenant_id}"})
    elif session.bind.dialect.name == "sqlite":
        # SQLite's driver opens the transaction only at the first write, so the read of the last
        # event below could see a chain another appender extends before this insert: a write that
        # changes nothing takes the database's write lock first (held until the caller commits).
        await session.execute(text("UPDATE audit_events SET seq = seq WHERE 0"))
    last = (
        await session.execute(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(AuditEvent.tenant_id == tenant_id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        )
    ).first()
    event = AuditEvent(
        id=new_id(),
        tenant_id=tenant_id,
        seq=(last.seq + 1) if last else 1,
        at=utcnow(),
        actor_type=context.actor_type,
        actor_id=context.actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome=outcome,
        ip=context.ip,
        user_agent=(context.user_agent or None) and context.user_agent[:400],
        request_id=context.request_id,
        before=_plain(before),
        after=_plain(after),
        details=_plain(details),
        prev_hash=last.hash if last else GENESIS,
    )
    event.hash = _event_hash(event)
    session.add(event)
    await session.flush()
    return event


async def record_now(db: Database, *, tenant_id: str, **fields: Any) -> None:
    """Append an event in its own transaction (denials, failed sign-ins: kept even on error)."""
    for attempt in range(5):
        async with db.tenant_scope(tenant_id=tenant_id) as session:
            try:
                await record(session, tenant_id=tenant_id, **fields)
                await session.commit()
                return
            except IntegrityError:
                # Another appender took the same seq (SQLite has no advisory lock): retry.
                await session.rollback()
                if attempt == 4:
                    raise


async def list_events(
    session: AsyncSession,
    *,
    tenant_id: str,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    """Newest-first events of a tenant, filtered; ``before_seq`` pages backwards."""
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id)
    if actor:
        query = query.where(AuditEvent.actor_id == actor.split(":", 1)[-1])
    if action:
        query = query.where(
            AuditEvent.action.startswith(action[:-1]) if action.endswith("*") else AuditEvent.action == action
        )
    if resource_type:
        query = query.where(AuditEvent.resource_type == resource_type)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at < until)
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    query = query.order_by(AuditEvent.seq.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def verify_chain(session: AsyncSession, *, tenant_id: str) -> int | None:
    """The ``seq`` of the first event whose chain link is broken, or None when intact.

    After pruning, the chain starts at the tenant's anchor: the first kept event must be
    ``anchor.seq + 1`` and link to ``anchor.hash``.
    """
    anchor = await session.get(AuditAnchor, tenant_id)
    expected_prev = anchor.hash if anchor else GENESIS
    expected_seq = anchor.seq + 1 if anchor else 1
    rows = await session.stream_scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.seq)
    )
    async for event in rows:
        if event.seq != expected_seq or event.prev_hash != expected_prev or _event_hash(event) != event.hash:
            return event.seq
        expected_prev = event.hash
        expected_seq += 1
    return None


async def prunable_through(session: AsyncSession, *, tenant_id: str, before: datetime) -> int | None:
    """The highest seq that may be pruned for a cut-off: events older than ``before``, never the newest."""
    head = (
        await session.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.tenant_id == tenant_id))
    ).scalar_one_or_none()
    if head is None:
        return None
    through = (
        await session.execute(
            select(func.max(AuditEvent.seq)).where(
                AuditEvent.tenant_id == tenant_id, AuditEvent.at < before, AuditEvent.seq < head
            )
        )
    ).scalar_one_or_none()
    return int(through) if through is not None else None


async def prune_through(session: AsyncSession, *, tenant_id: str, seq: int) -> int:
    """Delete the tenant's events up to ``seq`` (never the newest) and anchor the chain at it.

    Runs in the caller's transaction; returns how many events went.
    """
    if session.bind.dialect.name == "postgresql":
        # Serialised with appenders of the same chain.
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"audit:{tenant_id}"})
        removed = await session.execute(
            text("SELECT gorax_prune_audit(:tenant, :seq)"), {"tenant": tenant_id, "seq": seq}
        )
        return int(removed.scalar_one())
    cut = (
        await session.execute(select(AuditEvent.hash).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq == seq))
    ).scalar_one_or_none()
    head = (
        await session.execute(select(func.max(AuditEvent.seq)).where(AuditEvent.tenant_id == tenant_id))
    ).scalar_one()
    if cut is None or seq >= head:
        return 0
    result = await session.execute(delete(AuditEvent).where(AuditEvent.tenant_id == tenant_id, AuditEvent.seq <= seq))
    anchor = await session.get(AuditAnchor, tenant_id)
    if anchor is None:
        session.add(AuditAnchor(tenant_id=tenant_id, seq=seq, hash=cut, pruned_at=utcnow()))
    else:
        anchor.seq, anchor.hash, anchor.pruned_at = seq, cut, utcnow()
    await session.flush()
    return int(getattr(result, "rowcount", 0) or 0)
