"""Receiving deliveries: verify, parse, filter, de-duplicate and store before answering.

The outcome of every request that reaches a known webhook is stored (accepted, filtered,
bad_signature, duplicate, rejected) so the history explains what happened to each one. An
accepted delivery is committed before the 202 is sent; the dispatcher
(:mod:`api.webhooks.dispatcher`) turns it into a Prefect event afterwards.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.errors import ApiError, BadRequest, Conflict, NotFound, Unauthorized, Unavailable
from api.jsonsafe import unstorable
from api.models.workflows import Workflow
from api.webhooks import credential_stamps
from api.webhooks.batching import StaleWebhook as StaleWebhook  # the routes catch it as service.StaleWebhook
from api.webhooks.batching import Version, writer_for
from api.webhooks.models import NewDelivery, Webhook, WebhookDelivery
from api.webhooks.secrets_cache import SecretUnavailable, SigningSecret, secret_cache
from api.webhooks.signatures import SignatureConfig, SignatureError, delivery_id, verify
from flows import tracing
from translator import compile_expression

log = logging.getLogger("gorax.webhooks")

# Never copied into the trigger input (they authenticate the sender, not describe the event).
_PRIVATE_HEADERS = {"authorization", "cookie", "proxy-authorization"}
_FORM = "application/x-www-form-urlencoded"
#: Deepest nesting of arrays and objects a JSON body may have. Deeper bodies break the parser
#: (RecursionError) or, a little shallower, every later step: storing, Prefect's events API,
#: templates. Real payloads nest a dozen levels at most.
MAX_JSON_DEPTH = 100


class MethodNotAllowed(ApiError):
    """The webhook does not accept this HTTP method (405)."""

    status_code = 405
    code = "METHOD_NOT_ALLOWED"


class UnsupportedMediaType(ApiError):
    """The webhook does not accept this content type (415)."""

    status_code = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


@dataclass(frozen=True)
class Outcome:
    """What the receiver answers: the stored delivery and its status."""

    delivery: WebhookDelivery | NewDelivery
    webhook: Webhook
    status: str  # accepted, filtered, duplicate
    original_id: str | None = None


async def _lookup(db: Database, token: str) -> tuple[Webhook, str | None]:
    async with db.system_scope() as session:
        row = (
            await session.execute(
                select(Webhook, Workflow.status, Workflow.deployment_id)
                .join(Workflow, Workflow.id == Webhook.workflow_id)
                .where(Webhook.token == token)
            )
        ).one_or_none()
    if row is None or not row[0].active or row[1] == "archived":
        raise NotFound("no webhook at this URL")
    if row[1] == "paused":
        raise Conflict("the workflow is paused; deliver again after it is resumed", headers={"Retry-After": "60"})
    return row[0], row[2]


class WebhookDirectory:
    """Active webhooks by token, kept for ``ttl`` seconds so a delivery costs no lookup query.

    A cached webhook is only a guess: every stored delivery carries the :class:`Version` it
    was checked against and the writer re-reads it in the committing transaction, so a rotated,
    republished, deactivated or paused webhook is caught there (:class:`StaleWebhook`) and the
    request is checked again against the current row. Unknown and paused tokens are not kept.
    """

    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, Webhook, str | None]] = {}

    async def find(self, db: Database, token: str) -> tuple[Webhook, str | None]:
        """The active webhook of ``token`` and its deployment id (NotFound, Conflict if paused)."""
        entry = self._entries.get(token)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return entry[1], entry[2]
        webhook, deployment_id = await _lookup(db, token)
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[token] = (time.monotonic(), webhook, deployment_id)
        return webhook, deployment_id

    def forget(self, token: str) -> None:
        """Read ``token`` from the database next time."""
        self._entries.pop(token, None)


_directories: weakref.WeakKeyDictionary[Database, WebhookDirectory] = weakref.WeakKeyDictionary()


async def find_by_token(db: Database, token: str, *, fresh: bool = False) -> tuple[Webhook, str | None]:
    """The active webhook of ``token`` and its workflow's deployment id (cached; see
    :class:`WebhookDirectory`; ``fresh`` reads the database).

    NotFound for an unknown or retired token; Conflict (retry later) while the workflow is
    paused, so a sender's retries bring the delivery in once it is resumed.
    """
    directory = _directories.get(db)
    if directory is None:
        directory = _directories[db] = WebhookDirectory()
    if fresh:
        directory.forget(token)
    return await directory.find(db, token)


def media_type(headers: Mapping[str, str]) -> str:
    """The request's media type without parameters (``application/json``)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_body(body: bytes, media: str) -> Any:
    """The body as the trigger sees it: JSON, a form as a dict, else text."""
    if not body:
        return None
    if media == "application/json" or media.endswith("+json"):
        try:
            parsed = json.loads(body)
        except RecursionError:
            raise _too_deep() from None
        except ValueError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}", details={"field": "body"}) from None
        # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
        if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper_than(parsed, MAX_JSON_DEPTH):
            raise _too_deep()
        return parsed
    text = body.decode("utf-8", errors="replace")
    if media == _FORM:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
    return text


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep() -> BadRequest:
    # The message names the limit, never the body: nothing of the payload reaches a log line.
    return BadRequest(
        f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep; "
        f"at most {MAX_JSON_DEPTH} are accepted",
        details={"field": "body", "limit": MAX_JSON_DEPTH},
    )


def trigger_input(delivery: WebhookDelivery | NewDelivery, parsed: Any) -> dict[str, Any]:
    """The ``trigger`` scope of the run: body, headers, query, method and the delivery (and,
    when traces are on, the trace context of the request that delivered it: the run's spans
    continue that trace)."""
    headers = {k: v for k, v in delivery.headers.items() if k not in _PRIVATE_HEADERS}
    trigger = {
        "body": parsed,
        "headers": headers,
        "query": delivery.query,
        "method": delivery.method,
        "delivery_id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "received_at": delivery.received_at.isoformat(),
    }
    traceparent = tracing.current_traceparent()
    if traceparent:
        trigger[tracing.TRIGGER_TRACEPARENT] = traceparent
    return trigger


def _filter_passes(expression: str | None, trigger: dict[str, Any]) -> tuple[bool, str | None]:
    if not expression:
        return True, None
    try:
        return bool(compile_expression(expression).evaluate({"trigger": trigger})), None
    except Exception as exc:  # a broken filter is recorded on the delivery, never silent
        return False, f"filter failed: {exc}"


def _new_delivery(
    webhook: Webhook,
    *,
    method: str,
    headers: dict[str, str],
    query: dict[str, Any],
    body: bytes,
    status: str,
    reason: str | None = None,
) -> NewDelivery:
    return NewDelivery(
        id=new_id(),
        tenant_id=webhook.tenant_id,
        webhook_id=webhook.id,
        workflow_id=webhook.workflow_id,
        node_id=webhook.node_id,
        status=status,
        reason=reason,
        method=method,
        headers=headers,
        query=query,
        body=body,
        attempts=0,
        received_at=utcnow(),
    )


async def _store(db: Database, delivery: NewDelivery, version: Version) -> None:
    """Commit ``delivery`` (with whatever other requests are storing at the same moment), if
    the webhook and its secret are still as they were read (else :class:`StaleWebhook`)."""
    await writer_for(db).store(delivery, version)


async def _original(db: Database, webhook: Webhook, delivery: NewDelivery) -> tuple[str | None, str]:
    """The earlier delivery ``delivery`` repeats, and why it is a duplicate."""
    keys = [WebhookDelivery.replay_key == delivery.replay_key] if delivery.replay_key else []
    if delivery.dedupe_key:
        keys.append(WebhookDelivery.dedupe_key == delivery.dedupe_key)
    async with db.tenant_scope(tenant_id=webhook.tenant_id) as session:
        row = (
            (
                await session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.dedupe_key)
                    .where(
                        WebhookDelivery.tenant_id == webhook.tenant_id,
                        WebhookDelivery.webhook_id == webhook.id,
                        or_(*keys),
                    )
                    .limit(1)
                )
            ).one_or_none()
            if keys
            else None
        )
    if row is not None and delivery.dedupe_key and row.dedupe_key == delivery.dedupe_key:
        return row.id, f"delivery id {delivery.dedupe_key!r} was received before"
    return (
        row.id if row is not None else None,
        "the same signed delivery was received before (a replay; its delivery id is not signed)",
    )


@dataclass(frozen=True)
class _Verified:
    """A request that passed its webhook's signature check."""

    signature: SignatureConfig
    replay_key: str | None
    version: Version  # what it was checked against: stored only if still current


async def _signing_secret(db: Database, webhook: Webhook, name: str, *, recheck: bool) -> SigningSecret:
    """The webhook's signing secret from the cache (503 with Retry-After when unreadable)."""
    try:
        return await secret_cache.get(
            webhook.tenant_id,
            name,
            recheck=recheck,
            read_stamp=credential_stamps.reader(db, tenant_id=webhook.tenant_id, name=name),
        )
    except SecretUnavailable as exc:
        log.warning("webhook %s: %s", webhook.id, exc)
        raise Unavailable(
            "the signing secret cannot be read right now; retry later", headers={"Retry-After": "5"}
        ) from None


async def _verified(
    db: Database,
    webhook: Webhook,
    *,
    method: str,
    headers: dict[str, str],
    query: dict[str, Any],
    body: bytes,
    recheck: bool,
    on_rejected: Callable[[NewDelivery], None] | None = None,
) -> _Verified:
    """The request checked against the webhook's signature settings; one that fails is stored
    as ``bad_signature`` and answered 401 with the reason. ``recheck``: the secret's change
    stamp is compared with the current one first (see :meth:`SecretCache.get`)."""
    version = Version.of(webhook)
    try:
        signature = SignatureConfig.from_config(webhook.config.get("signature"))
        secret = None
        if signature.scheme != "none":
            name = signature.secret or ""
            secret = await _signing_secret(db, webhook, name, recheck=recheck)
            version = Version.of(webhook, (name, secret.stamp))
        replay_key = verify(signature, headers, body, secret.values if secret else None)
    except SignatureError as exc:
        # Stored against the secret it failed with: if that was changed meanwhile, the request
        # is checked again with the new one (a newly added secret verifies at once).
        rejected = _new_delivery(
            webhook,
            method=method,
            headers=headers,
            query=query,
            body=body,
            status="bad_signature",
            reason=exc.reason,
        )
        await _store(db, rejected, version)
        if on_rejected is not None:
            on_rejected(rejected)
        raise Unauthorized(
            f"signature rejected: {exc.reason}", details={"header": exc.header} if exc.header else {}
        ) from None
    return _Verified(signature, replay_key, version)


async def receive(
    db: Database,
    webhook: Webhook,
    *,
    method: str,
    headers: dict[str, str],
    query: dict[str, Any],
    body: bytes,
    direct: bool = False,
    recheck: bool = False,
    on_rejected: Callable[[NewDelivery], None] | None = None,
) -> Outcome:
    """Check one request against the webhook's config and store the result.

    ``headers`` have lower-case names. Raises 401 (signature), 405, 415, 400 or 503; a
    duplicate or filtered delivery is an :class:`Outcome`, not an error. With ``direct`` the
    accepted delivery is stored as ``direct`` (the caller starts the run itself). ``recheck``
    after :class:`StaleWebhook`: the signing secret's stamp is read again too. ``on_rejected``
    is called with a delivery stored as ``bad_signature`` (before the 401 is raised).
    """
    config = webhook.config
    if method not in config.get("methods", ["POST"]):
        raise MethodNotAllowed(
            f"this webhook accepts {', '.join(config.get('methods', ['POST']))}", details={"method": method}
        )
    media = media_type(headers)
    allowed = [c.lower() for c in config.get("content_types", ["application/json"])]
    if body and media not in allowed:
        raise UnsupportedMediaType(
            f"content type {media or '(none)'!r} is not accepted; send one of {', '.join(allowed)}",
            details={"header": "Content-Type"},
        )
    checked = await _verified(
        db, webhook, method=method, headers=headers, query=query, body=body, recheck=recheck, on_rejected=on_rejected
    )
    parsed = parse_body(body, media)
    delivery = _new_delivery(
        webhook, method=method, headers=headers, query=query, body=body, status="direct" if direct else "accepted"
    )
    delivery.external_id = delivery_id(checked.signature, headers, body)
    trigger = trigger_input(delivery, parsed)
    # A sender's big numbers are kept as sent; text with a NUL character could not be stored
    # by Prefect at all (the delivery would never become a run).
    if (problem := unstorable(trigger, "request", numbers=False)) is not None:
        raise BadRequest(problem, details={"field": "body"})
    passes, reason = _filter_passes(config.get("filter"), trigger)
    if not passes:
        delivery.status, delivery.reason = "filtered", reason or "the filter is false"
        await _store(db, delivery, checked.version)
        return Outcome(delivery, webhook, "filtered")
    delivery.payload = trigger
    delivery.dedupe_key, delivery.replay_key = delivery.external_id, checked.replay_key
    try:
        await _store(db, delivery, checked.version)
    except IntegrityError:
        original, why = await _original(db, webhook, delivery)
        duplicate = _new_delivery(
            webhook, method=method, headers=headers, query=query, body=body, status="duplicate", reason=why
        )
        duplicate.external_id, duplicate.replay_of = delivery.external_id, original
        await _store(db, duplicate, checked.version)
        return Outcome(duplicate, webhook, "duplicate", original_id=original)
    return Outcome(delivery, webhook, "accepted")


async def replay(db: Database, *, tenant_id: str, webhook_id: str, delivery_id_: str) -> WebhookDelivery:
    """Queue a stored delivery again as a new delivery (a new event id, hence a new run)."""
    async with db.tenant_scope(tenant_id=tenant_id) as session:
        old = (
            await session.execute(
                select(WebhookDelivery).where(
                    WebhookDelivery.tenant_id == tenant_id,
                    WebhookDelivery.webhook_id == webhook_id,
                    WebhookDelivery.id == delivery_id_,
                )
            )
        ).scalar_one_or_none()
        if old is None:
            raise NotFound(f"delivery {delivery_id_!r} not found", details={"event_id": delivery_id_})
        if old.payload is None:
            raise Conflict(
                f"delivery {delivery_id_} was {old.status}; only accepted deliveries can be replayed",
                details={"status": old.status},
            )
        fresh = WebhookDelivery(
            id=new_id(),
            tenant_id=tenant_id,
            webhook_id=old.webhook_id,
            workflow_id=old.workflow_id,
            node_id=old.node_id,
            status="accepted",
            reason=f"replay of {old.id}",
            method=old.method,
            headers=old.headers,
            query=old.query,
            body=old.body,
            replay_of=old.id,
            attempts=0,
            received_at=utcnow(),
        )
        fresh.payload = {**old.payload, "delivery_id": fresh.id, "replay_of": old.id}
        session.add(fresh)
        await session.commit()
        return fresh
