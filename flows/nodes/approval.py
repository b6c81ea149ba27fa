"""``human.approval``: record a human task, then suspend the run until an assignee decides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from blocks.redact import mask_values
from flows.errors import ApprovalExpired
from flows.internal_api import post_internal
from flows.nodes._common import HANDLE_PATTERN, check_duration, parse_duration
from translator.nodetypes import Ejected, NodeConfig, NodeContext, NodeType, Routed, Suspend, input_key

#: The tenant roles a task may name as ``role:<role>`` (the API's roles).
ROLES = ("admin", "editor", "operator", "viewer")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _person_or_role(value: str) -> str:
    """A user's e-mail address or ``role:<role>``, as written."""
    if value.startswith("role:"):
        if value[5:] not in ROLES:
            raise ValueError(f"{value!r} names no role: use one of {', '.join('role:' + r for r in ROLES)}")
    elif not _EMAIL.match(value):
        raise ValueError(f"{value!r} is neither an e-mail address nor 'role:<role>'")
    return value


PersonOrRole = Annotated[str, AfterValidator(_person_or_role)]


class ApprovalOption(BaseModel):
    """One button of the decision; its value names the output handle."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, description="Text on the button.")
    value: str = Field(pattern=HANDLE_PATTERN, description="Decision value and output handle name.")


class Escalation(BaseModel):
    """What happens when nobody decided after a while."""

    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="Time since the task opened, e.g. '24h'.")
    notify: list[str] | None = Field(
        default=None,
        description="Who to remind: user emails or 'role:<role>'. They may see the task from then on.",
    )
    assign: list[PersonOrRole] | None = Field(
        default=None,
        description="Who becomes an assignee (user emails or 'role:<role>'): they are told, and may "
        "see and decide the task from then on, besides the assignees before them.",
    )
    decide: str | None = Field(default=None, description="Decide with this option value.")

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        return check_duration(value) or value

    @model_validator(mode="after")
    def _acts(self) -> Escalation:
        if not self.notify and not self.assign and self.decide is None:
            raise ValueError("an escalation needs 'notify', 'assign' or 'decide'")
        return self


class ApprovalDecision(BaseModel):
    """What the API passes to a suspended run when a human task is decided."""

    value: str | None
    comment: str | None = None
    decided_by: str
    decided_at: str
    expired: bool = False


def _default_options() -> list[ApprovalOption]:
    return [ApprovalOption(label="Approve", value="approved"), ApprovalOption(label="Reject", value="rejected")]


#: How long an ejected approval without a timeout pauses its flow run (Prefect needs a bound).
_EJECT_WAIT = 7 * 86400
_EJECT_DECISION = '''class ApprovalDecision(RunInput):
    """What resumes a paused approval: the option chosen, by whom, and why."""

    decision: str
    comment: str | None = None
    decided_by: str = "unknown"'''
_EJECT_WAIT_HELPER = '''def wait_for_decision(request: dict[str, Any], key: str) -> dict[str, Any]:
    """Pause the flow run until a person resumes it with an ApprovalDecision."""
    form = ApprovalDecision.with_initial_data(description=request["title"])
    timeout = request["timeout_seconds"]
    decision = pause_flow_run(wait_for_input=form, timeout=timeout, key=key)
    if decision.decision not in request["options"]:
        raise ValueError(f"{decision.decision!r} is not one of {request['options']}")
    return {
        "decision": decision.decision,
        "comment": decision.comment,
        "decided_by": decision.decided_by,
        "decided_at": datetime.now(UTC).isoformat(),
    }'''

Channel = Literal["inbox", "email", "slack"]


def _inbox_only() -> list[Channel]:
    return ["inbox"]


class HumanApproval(NodeType):
    type = "human.approval"
    version = 1
    display_name = "Human approval"
    category = "human"
    description = "Pause until an assignee picks an option; each option is an output."
    icon = "user-check"
    example = {"title": "Refund {{ trigger.amount }} EUR?", "assignees": ["finance@example.com"]}
    credential_types = ("smtp-server",)
    handles_from = "options.*.value"
    suspends_for = ApprovalDecision

    class Config(NodeConfig):
        title: str = Field(min_length=1, description="What is asked; templates allowed.")
        description: str | None = Field(default=None, description="Details shown with the task.")
        assignees: list[str] = Field(min_length=1, description="Who may decide: user emails or 'role:<role>'.")
        options: list[ApprovalOption] = Field(
            default_factory=_default_options, min_length=1, description="The choices; values are output handles."
        )
        timeout: str | None = Field(default=None, description="How long to wait before the task expires, e.g. '48h'.")
        escalation: list[Escalation] = Field(
            default_factory=list, description="Reminders and automatic decisions, in time order."
        )
        channels: list[Channel] = Field(
            default_factory=_inbox_only, description="Where assignees are told about the task."
        )
        email_credential: str | None = Field(
            default=None, description="SMTP credential used when 'email' is a channel."
        )

        @field_validator("timeout")
        @classmethod
        def _timeout(cls, value: str | None) -> str | None:
            return check_duration(value)

        @model_validator(mode="after")
        def _consistent(self) -> HumanApproval.Config:
            values = [o.value for o in self.options]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"option values must be unique: {', '.join(dupes)} repeated")
            for i, step in enumerate(self.escalation):
                if step.decide is not None and step.decide not in values:
                    raise ValueError(
                        f"escalation[{i}].decide {step.decide!r} is not an option value ({', '.join(values)})"
                    )
            if "email" in self.channels and not self.email_credential:
                raise ValueError("channel 'email' needs 'email_credential'")
            return self

    @classmethod
    def eject(cls, config: Mapping[str, Any]) -> Ejected | None:
        """The task renders the question; the flow pauses (Prefect's ``pause_flow_run``) until a
        person resumes it with a decision, the chosen option being the handle."""
        timeout = config.get("timeout")
        if isinstance(timeout, str) and "{{" in timeout:
            return None  # a timeout computed at run time has no Python form yet
        seconds = int(parse_duration(timeout).total_seconds()) if timeout else _EJECT_WAIT
        options = config.get("options") or [o.model_dump() for o in _default_options()]
        notes = [f"pauses the flow run for at most {seconds} s: resume it with an ApprovalDecision"]
        notes.append("    (Prefect UI or resume_flow_run(run_id, run_input={...})); the pause times out")
        notes.append("    as a failed run. Gorax's assignees, inbox, notifications and escalation are not ejected.")
        body = f"""return {{
    "title": config["title"],
    "options": {[str(o.get("value")) for o in options]!r},
    "timeout_seconds": {seconds},
}}
""".replace("'", '"')
        return Ejected(
            body=body,
            imports=(
                "from datetime import UTC, datetime",
                "from prefect.flow_runs import pause_flow_run",
                "from prefect.input import RunInput",
            ),
            helpers=(_EJECT_DECISION, _EJECT_WAIT_HELPER),
            notes=tuple(notes),
            in_flow="""{steps}[{node}] = wait_for_decision({call}, {key})
{routes}[{node}] = {steps}[{node}]["decision"]
""",
        )

    async def run(self, config: HumanApproval.Config, ctx: NodeContext) -> Suspend:
        """Record the task (idempotent per run, node and iteration), then wait for a decision."""
        key = input_key("approval", ctx.node_id, ctx.path)
        workflow = ctx.scope.get("workflow") or {}
        request = {
            "tenant_id": ctx.tenant_id,
            "flow_run_id": ctx.flow_run_id,
            "node_id": ctx.node_id,
            "node_key": key,
            "node_name": ctx.label,
            "workflow_id": workflow.get("id"),
            "workflow_name": workflow.get("name"),
            "title": config.title,
            "description": config.description,
            "assignees": config.assignees,
            "options": [o.model_dump() for o in config.options],
            "timeout_seconds": parse_duration(config.timeout).total_seconds() if config.timeout else None,
            "escalation": [
                {
                    "after_seconds": parse_duration(step.after).total_seconds(),
                    "notify": step.notify,
                    "assign": step.assign,
                    "decide": step.decide,
                }
                for step in config.escalation
            ],
            "channels": list(config.channels),
            "email_credential": config.email_credential,
            # What the assignee is shown: the data this step received.
            "snapshot": {"trigger": ctx.scope.get("trigger"), "inputs": ctx.inputs},
        }
        try:
            # Every value masked (rendered titles and descriptions can carry a secret as well);
            # the request's own field names are kept, the snapshot's data is masked whole.
            task = await post_internal("human-tasks", mask_values(request, free=("snapshot",)))
        except RuntimeError as exc:
            raise RuntimeError(f"recording the human task failed: {exc}") from None
        return Suspend(key=key, data={"task_id": task["id"]})

    async def resumed(self, data: Mapping[str, Any], received: BaseModel) -> Routed:
        """The decision as the output, leaving by the chosen option's handle."""
        decision = ApprovalDecision.model_validate(received.model_dump())
        if decision.expired or decision.value is None:
            raise ApprovalExpired(f"nobody decided human task {data.get('task_id')} before it expired")
        output = {
            "decision": decision.value,
            "comment": decision.comment,
            "decided_by": decision.decided_by,
            "decided_at": decision.decided_at,
        }
        return Routed(output=output, handles=(decision.value,))
