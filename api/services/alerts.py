"""Alert rules, alerts, and error workflows.

Prefect watches the runs (one automation per rule and per workflow with an error workflow,
:mod:`api.prefect.alerts`); when one fires it posts to ``/internal/alerts/fire`` and
:func:`fire` decides here:

- **error workflow**: the failed run's context (workflow, version, run id, failed node id and
  type, masked error message, trigger input) becomes the trigger of a run of the workflow's
  ``on_failure_workflow_id`` (same tenant). A run that was itself started as an error workflow
  (tag ``trigger:error``) starts none, so error workflows never feed each other; setting one that
  would close a cycle is refused.
- **alert rule**: the failed (or overlong) runs of the rule's window, grouped in one message,
  sent to the rule's channel (Slack through a Slack credential, e-mail through an SMTP
  credential, a webhook URL through the outbound guard) unless the rule sent one within its
  cool-down, in which case the alert is recorded as ``suppressed``. The cool-down is claimed by
  one conditional UPDATE, so simultaneous firings send once.

Every alert, sent, suppressed or failed to send, is in the rule's history.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.base import new_id, utcnow
from api.db.engine import Database
from api.deadletters.models import DeadLetter
from api.errors import NotFound, ValidationFailed
from api.models.alerts import AlertEvent, AlertRule
from api.models.workflows import Workflow
from api.prefect import PrefectClient, runs
from api.prefect import alerts as prefect_alerts
from api.services import audit, executions, notifications
from api.services.audit import AuditContext
from api.webhooks.models import WebhookDelivery
from blocks.loader import load_credential
from blocks.redact import mask
from flows import net, tenant_tag, workflow_tag
from flows.settings import RuntimeSettings

log = logging.getLogger("gorax.alerts")

KINDS = ("failure", "long_running", "failure_burst", "webhook_failures")
CHANNELS = ("slack", "email", "webhook")
_SLACK_API = "https://slack.com/api/"
#: Runs listed in one alert at most.
MAX_RUNS = 20


class Callback:
    """Where Prefect's automations post (the API's own URL) and the token they use."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token


def _check_rule(body: dict[str, Any]) -> None:
    kind = body["kind"]
    errors = []
    if kind == "long_running" and not body.get("seconds"):
        errors.append({"path": "seconds", "message": "long_running needs seconds (how long a run may take)"})
    if kind in ("failure_burst", "webhook_failures"):
        for field in ("threshold", "window_minutes"):
            if not body.get(field):
                errors.append({"path": field, "message": f"{kind} needs threshold and window_minutes"})
    channel = body["channel"]
    if channel["type"] in ("slack", "email") and not channel.get("credential"):
        errors.append({"path": "channel.credential", "message": f"a {channel['type']} channel needs a credential"})
    if channel["type"] == "slack" and not channel.get("channel"):
        errors.append({"path": "channel.channel", "message": "a slack channel needs the Slack channel to post to"})
    if channel["type"] == "email" and not channel.get("to"):
        errors.append({"path": "channel.to", "message": "an email channel needs at least one address"})
    if channel["type"] == "webhook" and not channel.get("url"):
        errors.append({"path": "channel.url", "message": "a webhook channel needs its url"})
    if errors:
        raise ValidationFailed("the alert rule is incomplete", details={"errors": errors})


def rule_public(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "window_minutes": rule.window_minutes,
        "seconds": rule.seconds,
        "workflow_id": rule.workflow_id,
        "channel": rule.channel,
        "cooldown_minutes": rule.cooldown_minutes,
        "enabled": rule.enabled,
        "last_sent_at": rule.last_sent_at,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


async def _sync_rule(prefect: PrefectClient, callback: Callback, rule: AlertRule) -> None:
    block_id = await prefect_alerts.ensure_callback_block(prefect, url=callback.url, token=callback.token)
    await prefect_alerts.put_automation(
        prefect,
        prefect_alerts.rule_automation(
            rule_id=rule.id,
            tenant_id=rule.tenant_id,
            kind=rule.kind,
            workflow_id=rule.workflow_id,
            threshold=rule.threshold,
            window_minutes=rule.window_minutes,
            seconds=rule.seconds,
            enabled=rule.enabled,
            block_id=block_id,
        ),
    )


async def get_rule(session: AsyncSession, *, tenant_id: str, rule_id: str) -> AlertRule:
    rule = (
        await session.execute(select(AlertRule).where(AlertRule.tenant_id == tenant_id, AlertRule.id == rule_id))
    ).scalar_one_or_none()
    if rule is None:
        raise NotFound(f"alert rule {rule_id!r} not found", details={"rule_id": rule_id})
    return rule


async def _check_workflow(session: AsyncSession, tenant_id: str, workflow_id: str | None, path: str) -> None:
    if workflow_id is None:
        return
    found = (
        await session.execute(select(Workflow.id).where(Workflow.tenant_id == tenant_id, Workflow.id == workflow_id))
    ).scalar_one_or_none()
    if found is None:
        raise ValidationFailed(
            f"workflow {workflow_id!r} not found",
            details={"errors": [{"path": path, "message": f"no workflow {workflow_id!r} in this tenant"}]},
        )


async def list_rules(session: AsyncSession, *, tenant_id: str) -> list[AlertRule]:
    return list(
        (
            await session.execute(
                select(AlertRule).where(AlertRule.tenant_id == tenant_id).order_by(AlertRule.created_at)
            )
        ).scalars()
    )


async def create_rule(
    session: AsyncSession,
    prefect: PrefectClient,
    callback: Callback,
    *,
    tenant_id: str,
    body: dict[str, Any],
    context: AuditContext,
) -> AlertRule:
    _check_rule(body)
    await _check_workflow(session, tenant_id, body.get("workflow_id"), "workflow_id")
    rule = AlertRule(id=new_id(), tenant_id=tenant_id, **body)
    session.add(rule)
    await session.flush()
    await _sync_rule(prefect, callback, rule)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="alert_rule.create",
        context=context,
        resource_type="alert_rule",
        resource_id=rule.id,
        after=rule_public(rule),
    )
    await session.commit()
    return rule


async def update_rule(
    session: AsyncSession,
    prefect: PrefectClient,
    callback: Callback,
    *,
    tenant_id: str,
    rule_id: str,
    body: dict[str, Any],
    context: AuditContext,
) -> AlertRule:
    _check_rule(body)
    await _check_workflow(session, tenant_id, body.get("workflow_id"), "workflow_id")
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    before = rule_public(rule)
    for key, value in body.items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    await session.flush()
    await _sync_rule(prefect, callback, rule)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="alert_rule.update",
        context=context,
        resource_type="alert_rule",
        resource_id=rule.id,
        before=before,
        after=rule_public(rule),
    )
    await session.commit()
    return rule


async def delete_rule(
    session: AsyncSession, prefect: PrefectClient, *, tenant_id: str, rule_id: str, context: AuditContext
) -> None:
    rule = await get_rule(session, tenant_id=tenant_id, rule_id=rule_id)
    before = rule_public(rule)
    await prefect_alerts.delete_named(prefect, prefect_alerts.rule_automation_name(rule.id))
    await session.delete(rule)
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="alert_rule.delete",
        context=context,
        resource_type="alert_rule",
        resource_id=rule_id,
        before=before,
    )
    await session.commit()


async def history(session: AsyncSession, *, tenant_id: str, rule_id: str | None, limit: int) -> list[AlertEvent]:
    query = select(AlertEvent).where(AlertEvent.tenant_id == tenant_id)
    if rule_id:
        query = query.where(AlertEvent.rule_id == rule_id)
    return list((await session.execute(query.order_by(AlertEvent.at.desc()).limit(limit))).scalars())


# -- sending -----------------------------------------------------------------------------------


def render(rule: AlertRule, runs_: list[dict[str, Any]], *, test: bool = False) -> tuple[str, str]:
    """Subject and text of an alert listing ``runs_`` (failed deliveries for ``webhook_failures``)."""
    if rule.kind == "webhook_failures":
        return _render_deliveries(rule, runs_, test=test)
    what = {
        "failure": "failed",
        "failure_burst": f"failed {rule.threshold} times within {rule.window_minutes} min",
        "long_running": f"ran longer than {rule.seconds} s",
    }[rule.kind]
    prefix = "[Gorax test alert]" if test else "[Gorax alert]"
    subject = f"{prefix} {rule.name}: {len(runs_)} run(s) {what}" if runs_ else f"{prefix} {rule.name}"
    lines = [subject, ""]
    for run in runs_[:MAX_RUNS]:
        error = f": {run['error']}" if run.get("error") else ""
        lines.append(f"- {run.get('workflow_name') or run.get('workflow_id')} run {run['id']} {run['status']}{error}")
    if len(runs_) > MAX_RUNS:
        lines.append(f"... and {len(runs_) - MAX_RUNS} more")
    if test:
        lines.append("This is a test of the rule's channel.")
    return subject, "\n".join(lines)


def _render_deliveries(rule: AlertRule, deliveries: list[dict[str, Any]], *, test: bool) -> tuple[str, str]:
    prefix = "[Gorax test alert]" if test else "[Gorax alert]"
    what = f"failed webhook deliveries ({rule.threshold} within {rule.window_minutes} min)"
    subject = f"{prefix} {rule.name}: {len(deliveries)} {what}"
    lines = [subject, ""]
    for item in deliveries[:MAX_RUNS]:
        lines.append(
            f"- delivery {item['id']} of webhook {item.get('webhook_id')} (workflow {item.get('workflow_id')}) "
            f"at {item.get('at')}: {item.get('failure')}: {item.get('reason')}"
        )
    if len(deliveries) > MAX_RUNS:
        lines.append(f"... and {len(deliveries) - MAX_RUNS} more")
    if test:
        lines.append("This is a test of the rule's channel.")
    return subject, "\n".join(lines)


def _secret(value: Any) -> Any:
    """A credential field's plain value."""
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


async def send(
    rule: AlertRule, *, subject: str, text: str, runs_: list[dict[str, Any]], runtime: RuntimeSettings
) -> None:
    """Send one alert to the rule's channel (raises on failure)."""
    channel = rule.channel
    if channel["type"] == "email":
        server = await notifications.load_mail_server(tenant_id=rule.tenant_id, credential=channel["credential"])
        await notifications.send_email(server, to=list(channel["to"]), subject=subject, text=text)
        return
    if channel["type"] == "slack":
        block = await load_credential(channel["credential"], tenant_id=rule.tenant_id)
        token = _secret(getattr(block, "token", None))
        if not token:
            raise ValueError(f"credential {channel['credential']!r} has no 'token'")
        own = _secret(getattr(block, "base_url", None)) or _secret(getattr(block, "api_url", None))
        base = str(own or runtime.provider_api_url("slack") or _SLACK_API).rstrip("/")
        reply = await net.send(
            "POST",
            base + "/chat.postMessage",
            allowed=runtime.allowed_networks,
            headers={"Authorization": f"Bearer {token}"},
            json={"channel": channel["channel"], "text": text},
            timeout=15,
            max_bytes=256 * 1024,
        )
        body = json.loads(reply.content or b"{}") if reply.status == 200 else {}
        if reply.status != 200 or not body.get("ok"):
            raise RuntimeError(f"Slack answered HTTP {reply.status}: {str(body.get('error') or '')[:200]}")
        return
    reply = await net.send(
        "POST",
        channel["url"],
        allowed=runtime.allowed_networks,
        json={
            "rule": {"id": rule.id, "name": rule.name, "kind": rule.kind},
            "subject": subject,
            "text": text,
            **({"runs": [], "deliveries": runs_} if rule.kind == "webhook_failures" else {"runs": runs_}),
        },
        timeout=15,
        max_bytes=64 * 1024,
    )
    if reply.status >= 300:
        raise RuntimeError(f"the webhook answered HTTP {reply.status}")


#: What the history keeps of a listed run (or failed delivery).
_KEPT = ("id", "workflow_id", "workflow_name", "status", "error", "webhook_id", "failure", "reason", "at")


async def _deliver(
    db: Database, rule: AlertRule, runs_: list[dict[str, Any]], *, status: str, runtime: RuntimeSettings, test: bool
) -> AlertEvent:
    subject, text = render(rule, runs_, test=test)
    error = None
    if status == "sent":
        try:
            await send(rule, subject=subject, text=text, runs_=runs_, runtime=runtime)
        except Exception as exc:  # every channel failure is recorded, named, in the history
            status, error = "failed", mask(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("alert rule %s could not send: %s", rule.id, error)
    event = AlertEvent(
        id=new_id(),
        tenant_id=rule.tenant_id,
        rule_id=rule.id,
        at=utcnow(),
        status=status,
        subject=subject,
        runs=[{k: v for k, v in r.items() if k in _KEPT} for r in runs_],
        error=error,
        test=test,
    )
    async with db.tenant_scope(tenant_id=rule.tenant_id) as session:
        session.add(event)
        await session.commit()
    return event


async def send_test(db: Database, rule: AlertRule, *, runtime: RuntimeSettings) -> AlertEvent:
    """Send a test alert to the rule's channel now (no cool-down, recorded as a test)."""
    if rule.kind == "webhook_failures":
        example = {
            "id": "00000000-0000-0000-0000-000000000000",
            "workflow_id": rule.workflow_id,
            "webhook_id": "example",
            "failure": "bad_signature",
            "reason": "example reason",
            "at": utcnow().isoformat(),
        }
        return await _deliver(db, rule, [example], status="sent", runtime=runtime, test=True)
    sample = [
        {
            "id": "00000000-0000-0000-0000-000000000000",
            "workflow_name": "example",
            "status": "failed",
            "error": "example error",
        }
    ]
    return await _deliver(db, rule, sample, status="sent", runtime=runtime, test=True)


async def _claim(db: Database, rule: AlertRule) -> bool:
    """Take the rule's cool-down (True: this firing sends; False: one was sent within it)."""
    now = utcnow()
    since = now - timedelta(minutes=rule.cooldown_minutes)
    async with db.tenant_scope(tenant_id=rule.tenant_id) as session:
        result = await session.execute(
            update(AlertRule)
            .where(
                AlertRule.tenant_id == rule.tenant_id,
                AlertRule.id == rule.id,
                or_(AlertRule.last_sent_at.is_(None), AlertRule.last_sent_at <= since),
            )
            .values(last_sent_at=now)
        )
        await session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]


async def _window_deliveries(db: Database, rule: AlertRule) -> list[dict[str, Any]]:
    """The failed deliveries one ``webhook_failures`` alert lists: those of the rule's window
    (rejected signatures by when they arrived, dead letters by when they were recorded)."""
    since = utcnow() - timedelta(minutes=int(rule.window_minutes or 1))
    d, letter = WebhookDelivery, DeadLetter
    bad = select(d.id, d.workflow_id, d.webhook_id, d.reason, d.received_at).where(
        d.tenant_id == rule.tenant_id, d.status == "bad_signature", d.received_at >= since
    )
    dead = select(letter.delivery_id, letter.workflow_id, letter.webhook_id, letter.reason, letter.last_seen_at).where(
        letter.tenant_id == rule.tenant_id, letter.source == "webhook", letter.last_seen_at >= since
    )
    if rule.workflow_id:
        bad = bad.where(d.workflow_id == rule.workflow_id)
        dead = dead.where(letter.workflow_id == rule.workflow_id)
    found = []
    async with db.tenant_scope(tenant_id=rule.tenant_id) as session:
        for failure, query in (("bad_signature", bad), ("dead_letter", dead)):
            for id_, workflow_id, webhook_id, reason, at in (await session.execute(query.limit(100))).all():
                found.append(
                    {
                        "id": id_,
                        "workflow_id": workflow_id,
                        "webhook_id": webhook_id,
                        "failure": failure,
                        "reason": reason,
                        "at": at.isoformat(),
                    }
                )
    return sorted(found, key=lambda item: str(item["at"]))


async def _window_runs(prefect: PrefectClient, rule: AlertRule, run_id: str | None) -> list[dict[str, Any]]:
    """The runs one alert lists: the burst's failed runs of the window, else the firing run."""
    found: dict[str, dict[str, Any]] = {}
    if rule.kind == "failure_burst":
        tags = [tenant_tag(rule.tenant_id)] + ([workflow_tag(rule.workflow_id)] if rule.workflow_id else [])
        since = utcnow() - timedelta(minutes=int(rule.window_minutes or 1))
        flt = runs.run_filter(tags=tags, state_types=["FAILED", "CRASHED"])
        for run in await runs.read_runs(prefect, flt, limit=100):
            if run.state is not None and run.state.timestamp >= since:
                found[str(run.id)] = executions.summary_of(run)
    if run_id and run_id not in found:
        firing = await runs.read_run(prefect, UUID(run_id))
        if firing is not None and tenant_tag(rule.tenant_id) in (firing.tags or []):
            found[run_id] = executions.summary_of(firing)
    return [_plain_run(summary) for summary in found.values()]


def _plain_run(summary: dict[str, Any]) -> dict[str, Any]:
    """What an alert says of a run (JSON-ready, its error masked)."""
    ended = summary.get("ended_at")
    return {
        "id": summary["id"],
        "workflow_id": summary.get("workflow_id"),
        "workflow_name": summary.get("workflow_name"),
        "status": summary.get("status"),
        "error": mask(summary.get("error")),
        "ended_at": ended.isoformat() if ended is not None else None,
    }


async def fire_rule(
    db: Database, prefect: PrefectClient, *, rule_id: str, run: str | None, runtime: RuntimeSettings
) -> str:
    """A rule's automation fired: send one grouped alert, or record it held back by the cool-down."""
    async with db.system_scope() as session:
        rule = (await session.execute(select(AlertRule).where(AlertRule.id == rule_id))).scalar_one_or_none()
    if rule is None or not rule.enabled:
        return "ignored"
    if rule.kind == "webhook_failures":
        runs_ = await _window_deliveries(db, rule)
    else:
        runs_ = await _window_runs(prefect, rule, prefect_alerts.run_id_of(run))
    status = "sent" if await _claim(db, rule) else "suppressed"
    event = await _deliver(db, rule, runs_, status=status, runtime=runtime, test=False)
    return event.status


# -- error workflows ---------------------------------------------------------------------------


async def set_error_workflow(
    session: AsyncSession,
    prefect: PrefectClient,
    callback: Callback,
    *,
    tenant_id: str,
    workflow_id: str,
    on_failure_workflow_id: str | None,
    context: AuditContext,
) -> Workflow:
    """Set (or clear) the workflow run when one of ``workflow_id``'s runs fails."""
    workflow = (
        await session.execute(select(Workflow).where(Workflow.tenant_id == tenant_id, Workflow.id == workflow_id))
    ).scalar_one_or_none()
    if workflow is None:
        raise NotFound(f"workflow {workflow_id!r} not found", details={"workflow_id": workflow_id})
    target = on_failure_workflow_id
    if target is not None:
        await _check_workflow(session, tenant_id, target, "on_failure_workflow_id")
        seen: set[str] = {workflow_id}
        current: str | None = target
        while current is not None:
            if current in seen:
                raise ValidationFailed(
                    "the error workflow would run itself",
                    details={
                        "errors": [
                            {
                                "path": "on_failure_workflow_id",
                                "message": f"workflow {target!r} leads back to {current!r}: error workflows must not form a cycle",
                            }
                        ]
                    },
                )
            seen.add(current)
            current = (
                await session.execute(
                    select(Workflow.on_failure_workflow_id).where(
                        Workflow.tenant_id == tenant_id, Workflow.id == current
                    )
                )
            ).scalar_one_or_none()
    before = workflow.on_failure_workflow_id
    workflow.on_failure_workflow_id = target
    name = prefect_alerts.error_automation_name(workflow_id)
    if target is None:
        await prefect_alerts.delete_named(prefect, name)
    else:
        block_id = await prefect_alerts.ensure_callback_block(prefect, url=callback.url, token=callback.token)
        await prefect_alerts.put_automation(
            prefect, prefect_alerts.error_automation(workflow_id=workflow_id, tenant_id=tenant_id, block_id=block_id)
        )
    await audit.record(
        session,
        tenant_id=tenant_id,
        action="workflow.error_workflow.set",
        context=context,
        resource_type="workflow",
        resource_id=workflow_id,
        before={"on_failure_workflow_id": before},
        after={"on_failure_workflow_id": target},
    )
    await session.commit()
    return workflow


async def failure_context(prefect: PrefectClient, run: Any, workflow: Workflow) -> dict[str, Any]:
    """What the error workflow's run receives as its trigger: the failed run, masked."""
    failed: dict[str, Any] = {"id": None, "type": None}
    try:
        steps = await runs.read_run_steps(prefect, run)
    except Exception:  # a run without readable step records still has its state message
        steps = []
    for step in steps:
        if step.status in ("failed", "timed_out") and step.error:
            failed = {"id": step.node_id, "type": step.type}
            break
    parameters = run.parameters or {}
    message = run.state.message if run.state is not None else None
    return {
        "event": "workflow.failed",
        "workflow": {"id": workflow.id, "name": workflow.name},
        "version": parameters.get("workflow_version") or workflow.latest_version,
        "run_id": str(run.id),
        "status": executions.status_of(run.state),
        "failed_node": failed,
        "error": mask(message),
        "input": mask(parameters.get("trigger")),
    }


async def fire_error_workflow(db: Database, prefect: PrefectClient, *, workflow_id: str, run: str | None) -> str:
    """A run of ``workflow_id`` failed: start its error workflow with the run's context."""
    run_id = prefect_alerts.run_id_of(run)
    if run_id is None:
        return "ignored"
    async with db.system_scope() as session:
        workflow = (await session.execute(select(Workflow).where(Workflow.id == workflow_id))).scalar_one_or_none()
        if workflow is None or workflow.on_failure_workflow_id is None:
            return "ignored"
        target = (
            await session.execute(
                select(Workflow).where(
                    Workflow.tenant_id == workflow.tenant_id, Workflow.id == workflow.on_failure_workflow_id
                )
            )
        ).scalar_one_or_none()
    failed = await runs.read_run(prefect, UUID(run_id))
    if failed is None or tenant_tag(workflow.tenant_id) not in (failed.tags or []):
        return "ignored"
    if "trigger:error" in (failed.tags or []):
        log.info("run %s of an error workflow failed; no error workflow runs for it", run_id)
        return "ignored"
    if target is None or target.deployment_id is None or target.status != "active":
        log.warning("error workflow %s of %s is not published and active", workflow.on_failure_workflow_id, workflow_id)
        return "not_runnable"
    context = await failure_context(prefect, failed, workflow)
    started = await executions.start_run(
        prefect,
        tenant_id=workflow.tenant_id,
        workflow_id=target.id,
        deployment_id=target.deployment_id,
        trigger=context,
        trigger_type="error",
        idempotency_key=f"error-workflow:{run_id}",
    )
    await audit.record_now(
        db,
        tenant_id=workflow.tenant_id,
        action="workflow.error_workflow.run",
        context=AuditContext.system("alerts"),
        resource_type="workflow",
        resource_id=target.id,
        details={"failed_workflow_id": workflow.id, "failed_run_id": run_id, "execution_id": str(started.id)},
    )
    return "started"


async def fire(db: Database, prefect: PrefectClient, payload: dict[str, Any], *, runtime: RuntimeSettings) -> str:
    """Handle one automation's post (a rule's or an error workflow's)."""
    if payload.get("rule_id"):
        return await fire_rule(db, prefect, rule_id=str(payload["rule_id"]), run=payload.get("run"), runtime=runtime)
    if payload.get("error_workflow_of"):
        return await fire_error_workflow(
            db, prefect, workflow_id=str(payload["error_workflow_of"]), run=payload.get("run")
        )
    return "ignored"
