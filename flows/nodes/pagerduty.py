"""PagerDuty node types over the Events API v2: trigger, acknowledge and resolve incidents.

The credential is a PagerDuty Block holding a service's integration (routing) key. The events
endpoint (the full ``.../v2/enqueue`` URL) is the Block's ``api_url``, else
``GORAX_PAGERDUTY_API_URL``, else PagerDuty's.
Acknowledge and resolve find the incident by the ``dedup_key`` that the trigger returned.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from flows.integrations import JsonApi
from flows.integrations import credentials as creds
from translator.nodetypes import NodeConfig, NodeContext, NodeType

_EVENTS_API = "https://events.pagerduty.com/v2/enqueue"


class _PagerDutyConfig(NodeConfig):
    credential: str = Field(min_length=1, description="Name of the PagerDuty credential (integration key).")


class _PagerDutyNode(NodeType):
    category = "pagerduty"
    credential_types = ("pagerduty-key",)
    action: str

    async def _send(self, ctx: NodeContext, credential: str, event: dict[str, Any]) -> dict[str, Any]:
        block = await creds.load(ctx, credential, "pagerduty", self.credential_types)
        key = creds.required(block, "pagerduty", credential, "routing_key", "integration_key", "api_key", "key")
        api = JsonApi(
            "pagerduty",
            creds.api_base(block, "pagerduty", _EVENTS_API),
            tenant=ctx.tenant_id,
            headers={},
            secrets=[key],
        )
        answer = await api.call(
            "POST",
            "",
            json={"routing_key": key, "event_action": self.action, **event},
            operation=f"{self.action} event",
        )
        return {"status": answer.get("status"), "dedup_key": answer.get("dedup_key"), "message": answer.get("message")}


class PagerDutyCreateIncident(_PagerDutyNode):
    type = "pagerduty.create_incident"
    version = 1
    display_name = "Create PagerDuty incident"
    description = "Trigger an incident (alert) on a PagerDuty service."
    icon = "alert"
    example = {"credential": "pagerduty", "summary": "{{ trigger.service }} is down", "severity": "critical"}
    action = "trigger"

    class Config(_PagerDutyConfig):
        summary: str = Field(min_length=1, max_length=1024, description="What is wrong (the incident title).")
        source: str = Field(default="gorax", description="The affected system (host, service).")
        severity: Literal["critical", "error", "warning", "info"] = Field(
            default="error", description="Severity of the event."
        )
        dedup_key: str | None = Field(
            default=None, description="Deduplication key; events with the same key update one incident."
        )
        component: str | None = Field(default=None, description="Component of the source that is affected.")
        details: dict[str, Any] = Field(default_factory=dict, description="Custom details shown on the incident.")

    async def run(self, config: Config, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{status, dedup_key, message}``; keep ``dedup_key`` to acknowledge or resolve."""
        payload: dict[str, Any] = {"summary": config.summary, "source": config.source, "severity": config.severity}
        if config.component:
            payload["component"] = config.component
        if config.details:
            payload["custom_details"] = config.details
        event: dict[str, Any] = {"payload": payload}
        if config.dedup_key:
            event["dedup_key"] = config.dedup_key
        return await self._send(ctx, config.credential, event)


class _DedupConfig(_PagerDutyConfig):
    dedup_key: str = Field(min_length=1, description="The incident's dedup key (from pagerduty.create_incident).")


class PagerDutyAcknowledge(_PagerDutyNode):
    type = "pagerduty.acknowledge"
    version = 1
    display_name = "Acknowledge PagerDuty incident"
    description = "Acknowledge an incident by its dedup key."
    icon = "alert"
    example = {"credential": "pagerduty", "dedup_key": "{{ steps.page.dedup_key }}"}
    action = "acknowledge"
    Config = _DedupConfig

    async def run(self, config: _DedupConfig, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{status, dedup_key, message}``."""
        return await self._send(ctx, config.credential, {"dedup_key": config.dedup_key})


class PagerDutyResolve(_PagerDutyNode):
    type = "pagerduty.resolve"
    version = 1
    display_name = "Resolve PagerDuty incident"
    description = "Resolve an incident by its dedup key."
    icon = "alert"
    example = {"credential": "pagerduty", "dedup_key": "{{ steps.page.dedup_key }}"}
    action = "resolve"
    Config = _DedupConfig

    async def run(self, config: _DedupConfig, ctx: NodeContext) -> dict[str, Any]:
        """Output: ``{status, dedup_key, message}``."""
        return await self._send(ctx, config.credential, {"dedup_key": config.dedup_key})
