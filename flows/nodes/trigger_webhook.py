"""``trigger.webhook``: a run started by a signed HTTP delivery (verified by the API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from translator.nodetypes import AutomationSpec, Ejected, NodeConfig, NodeContext, TriggerSource, TriggerType


class WebhookSignature(BaseModel):
    """How the API verifies a delivery before it starts a run."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["standard-webhooks", "hmac-sha256", "stripe", "none"] = Field(
        default="standard-webhooks",
        description="Signature scheme: Standard Webhooks, a hex HMAC-SHA256 of the body, Stripe's, or none.",
    )
    secret: str | None = Field(
        default=None, description="Name of the webhook-secret credential holding the signing key."
    )
    header: str | None = Field(
        default=None,
        description="Header carrying the signature (default per scheme, e.g. X-Signature-256 for hmac-sha256).",
    )
    prefix: str | None = Field(default=None, description="Text before the signature in the header, e.g. 'sha256='.")
    tolerance_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="How far (seconds) a signed timestamp may be from now before the delivery is refused.",
    )

    @field_validator("tolerance_seconds", mode="before")
    @classmethod
    def _freshness_checked(cls, value: Any) -> Any:
        # 0 used to switch the check off without a word; the check is what makes a captured
        # delivery useless once its moment has passed, so there is no way to switch it off.
        if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
            raise ValueError(
                f"must be at least 1 (got {value}): the timestamp check that refuses replayed "
                "deliveries cannot be turned off; a slow sender needs a wider tolerance (up to 86400)"
            )
        return value

    @model_validator(mode="after")
    def _secret_needed(self) -> WebhookSignature:
        if self.scheme != "none" and not self.secret:
            raise ValueError(f"scheme {self.scheme!r} needs 'secret' (a credential name)")
        return self


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _post_only() -> list[HttpMethod]:
    return ["POST"]


class WebhookTrigger(TriggerType):
    type = "trigger.webhook"
    version = 1
    display_name = "Webhook"
    description = "Start the workflow when a signed HTTP request arrives at its webhook URL."
    icon = "webhook"
    example = {"methods": ["POST"], "filter": "trigger.body.action == 'opened'"}
    credential_types = ("webhook-secret",)
    expression_fields = ("filter",)
    credential_fields = ("signature.secret",)
    receives_webhooks = True

    class Config(NodeConfig):
        signature: WebhookSignature = Field(
            default_factory=lambda: WebhookSignature(scheme="none"),
            description="Signature verification of deliveries.",
        )
        filter: str | None = Field(
            default=None,
            description="Bare CEL over `trigger` (body, headers, query, method); deliveries for which "
            "it is false are acknowledged but start no run.",
        )
        methods: list[HttpMethod] = Field(
            default_factory=_post_only, min_length=1, description="HTTP methods accepted."
        )
        content_types: list[str] = Field(
            default_factory=lambda: ["application/json"],
            description="Accepted Content-Type values (media type only, e.g. application/json).",
        )
        max_body_bytes: int = Field(default=1048576, ge=1, le=10485760, description="Largest body accepted, in bytes.")
        respond: Literal["immediately", "after_run"] = Field(
            default="immediately",
            description="Answer 202 at once, or wait for the run and answer with its output.",
        )

    @classmethod
    def automation(cls, config: Config, source: TriggerSource) -> AutomationSpec:
        """The API's event for a verified delivery to this node; the run gets the delivery."""
        return AutomationSpec(
            expect=(source.webhook_event,),
            match={"prefect.resource.id": source.workflow_resource, "gorax.trigger-node": source.node_id},
            trigger="{{ event.payload }}",
        )

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected:
        """The delivery is the run input; the filter ends the run at once when false."""
        signature = config.get("signature") or {}
        scheme = signature.get("scheme", "none")
        checked = (
            f"signed with {scheme}, secret credential {signature.get('secret')!r}" if scheme != "none" else "unsigned"
        )
        return Ejected(
            body='return scope["trigger"]',
            accepts=config.get("filter"),
            notes=(
                f"a webhook in Gorax ({checked}); here the delivery",
                "    ({body, headers, query, method}) is the `trigger` parameter: verify it first.",
            ),
        )

    async def run(self, config: Config, ctx: NodeContext) -> Any:
        """The API verified and filtered the delivery already; pass the request on."""
        return ctx.scope.get("trigger")
