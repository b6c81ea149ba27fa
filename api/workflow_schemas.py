"""Request and response models of the workflow, execution, variable and credential routes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo

from api.errors import BadRequest
from api.jsonsafe import unstorable
from flows.variables import NAME_PATTERN

_TAG = r"^[A-Za-z0-9_.:\- ]{1,50}$"


class WorkflowCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    graph: dict[str, Any] | None = Field(default=None, description="gorax/graph@1 draft.")


class WorkflowUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=50)
    graph: dict[str, Any] | None = Field(default=None, description="gorax/graph@1 draft.")


class WorkflowClone(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class LastRun(BaseModel):
    id: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None


class WorkflowPublic(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    status: str
    graph: dict[str, Any]
    version: int | None = Field(description="Latest published version number.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    etag: str
    last_run: LastRun | None = None


class WorkflowSummary(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    status: str
    version: int | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ValidateRequest(BaseModel):
    graph: dict[str, Any] | None = Field(default=None, description="Graph to check (default: the draft).")


class ValidationResult(BaseModel):
    valid: bool
    errors: list[dict[str, Any]]


class PublishRequest(BaseModel):
    message: str = Field(default="", max_length=2000)


class VersionPublic(BaseModel):
    number: int
    author: str | None
    message: str
    created_at: datetime
    graph: dict[str, Any] | None = None


def _storable(value: Any, info: ValidationInfo) -> Any:
    if (problem := unstorable(value, info.field_name or "value")) is not None:
        raise ValueError(problem)
    return value


#: JSON that goes to Prefect as it is (a variable, a run's input): every store must keep it exactly.
StorableJson = Annotated[Any, AfterValidator(_storable)]


class ExecuteRequest(BaseModel):
    input: StorableJson = Field(default=None, description="The trigger input (trigger.* in expressions).")
    version: int | None = Field(default=None, ge=1, description="Published version (default: latest).")
    wait: bool = Field(default=False, description="Wait for the result.")
    timeout_seconds: float = Field(default=60, gt=0, le=3600, description="How long to wait.")


class ExecutionStarted(BaseModel):
    execution_id: str
    status: str = "pending"


class StepAttemptPublic(BaseModel):
    attempt: int = Field(description="1 for the first try, 2 for the first retry, and so on.")
    status: str = Field(
        description="completed, failed, timed_out, cancelled, or suspended (the node "
        "asked for input and the run waited for it)."
    )
    error: str | None = Field(default=None, description="Why the try failed (secrets masked).")
    started_at: datetime | None = None
    duration_ms: int | None = None


class StepPublic(BaseModel):
    node_id: str
    name: str
    type: str
    status: str
    attempts: int
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    iteration: list[int] = Field(default_factory=list)
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempt_history: list[StepAttemptPublic] = Field(
        default_factory=list, description="Every attempt of the node, in order, with its error and time."
    )


class ExecutionSummary(BaseModel):
    id: str
    workflow_id: str | None
    workflow_name: str | None
    version: int | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    trigger_type: str | None
    error: str | None


class ExecutionDetail(ExecutionSummary):
    input: Any = None
    output: Any = None
    steps: list[StepPublic]
    prefect_url: str
    trace_id: str | None = Field(
        default=None,
        description="The OpenTelemetry trace id of the run's spans (32 hex digits); null when traces were off.",
    )


class ExecutionResult(BaseModel):
    execution_id: str
    status: str
    output: Any = None
    error: str | None = None
    steps: list[StepPublic]


#: A variable's value.
VariableValue = Annotated[
    StorableJson, Field(description="Any JSON value (numbers within ±(2^53 - 1), no NUL characters).")
]


class VariableCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="Used as env.<name> in expressions.")
    value: VariableValue


class VariableUpdate(BaseModel):
    value: VariableValue


class VariablePublic(BaseModel):
    name: str
    value: Any


class CredentialCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    type: str = Field(min_length=1, max_length=100)
    values: dict[str, Any] = Field(default_factory=dict)


class CredentialUpdate(BaseModel):
    values: dict[str, Any]


def check_tags(tags: list[str] | None) -> list[str] | None:
    """Tags as stored: non-empty, no quotes or wildcards (they are matched inside JSON text)."""
    if tags is None:
        return None
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not re.match(_TAG, tag):
            raise BadRequest(f"tags[{i}]: use 1-50 letters, digits, spaces and _.:-", details={"field": f"tags.{i}"})
    return list(dict.fromkeys(tags))
