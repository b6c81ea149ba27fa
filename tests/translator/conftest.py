"""Node types of the translator's own tests, in their own registry (independent of flows/nodes)."""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from translator import compile_expression
from translator.nodetypes import EmptyConfig, NodeConfig, NodeRegistry, NodeType, TriggerType

# Build cel-python's parser now: it raises the recursion limit once, outside any hypothesis test.
compile_expression("trigger.warm == 1")


class Manual(TriggerType):
    type = "trigger.manual"
    display_name = "Manual"
    fires_by_default = True
    description = "Started by hand."


class Webhook(TriggerType):
    type = "trigger.webhook"
    display_name = "Webhook"
    description = "Started by an HTTP call."
    expression_fields = ("filter",)
    credential_fields = ("signature.secret",)

    class Config(NodeConfig):
        class Signature(BaseModel):
            secret: str = Field(description="Credential name.")

        signature: Signature | None = Field(None, description="Signature check.")
        filter: str | None = Field(None, description="Bare CEL over the request.")


class Condition(NodeType):
    type = "control.condition"
    display_name = "Condition"
    category = "control"
    description = "Route by a bool."
    outputs = ("true", "false")
    expression_fields = ("expression",)

    class Config(NodeConfig):
        expression: str = Field(description="Bare CEL.")


class Switch(NodeType):
    type = "control.switch"
    display_name = "Switch"
    category = "control"
    description = "Route by cases."
    outputs = ("default",)
    handles_from = "cases.*"
    expression_fields = ("value", "cases.*")

    class Config(NodeConfig):
        value: str | None = Field(None, description="Bare CEL.")
        cases: dict[str, str] | list[str] = Field(description="Cases.")


class Loop(NodeType):
    type = "control.loop"
    display_name = "Loop"
    category = "control"
    description = "Repeat the body."
    expression_fields = ("condition",)
    has_body = True
    holds_slot = False

    class Config(NodeConfig):
        mode: Literal["foreach", "while"] = Field("foreach", description="Mode.")
        items: list[Any] | None = Field(None, description="Items.")
        condition: str | None = Field(None, description="Bare CEL.")
        max_iterations: int = Field(100, ge=1, description="Bound.")


class Http(NodeType):
    type = "http.request"
    display_name = "HTTP"
    category = "http"
    description = "Call an API."

    class Config(NodeConfig):
        method: Literal["GET", "POST"] = Field("GET", description="Method.")
        url: str = Field(description="URL.")
        headers: dict[str, str] = Field(default_factory=dict, description="Headers.")
        json_body: Any = Field(None, alias="json", description="Body.")
        credential: str | None = Field(None, description="Credential name.")
        timeout_seconds: float = Field(30, gt=0, description="Timeout.")


class Transform(NodeType):
    type = "data.transform"
    display_name = "Transform"
    category = "data"
    description = "Build a value."

    class Config(NodeConfig):
        value: Any = Field(None, description="Any JSON with templates.")


class Approval(NodeType):
    type = "human.approval"
    display_name = "Approval"
    category = "human"
    description = "Ask a person."
    handles_from = "options.*.value"

    class Config(NodeConfig):
        class Option(BaseModel):
            label: str = Field(description="Label.")
            value: str = Field(description="Value.")

        title: str = Field(description="Question.")
        options: list[Option] = Field(description="Choices.")
        email_credential: str | None = Field(None, description="SMTP credential.")


class EchoV1(NodeType):
    type = "demo.echo"
    version = 1
    display_name = "Echo"
    category = "demo"
    description = "Old echo."

    class Config(NodeConfig):
        text: str = Field(description="Text.")


class EchoV2(NodeType):
    type = "demo.echo"
    version = 2
    display_name = "Echo"
    category = "demo"
    description = "New echo."

    class Config(NodeConfig):
        message: str = Field(description="Text.")


class Noop(NodeType):
    type = "demo.noop"
    display_name = "Noop"
    category = "demo"
    description = "Nothing."
    Config = EmptyConfig


TEST_TYPES = (Manual, Webhook, Condition, Switch, Loop, Http, Transform, Approval, EchoV1, EchoV2, Noop)


def make_registry() -> NodeRegistry:
    registry = NodeRegistry()
    for node_type in TEST_TYPES:
        registry.register(node_type)
    return registry


@pytest.fixture(scope="session")
def registry() -> NodeRegistry:
    return make_registry()


BASE: dict[str, Any] = {
    "format": "gorax/graph@1",
    "name": "notify",
    "nodes": [
        {
            "id": "hook",
            "type": "trigger.webhook",
            "position": {"x": 0, "y": 0},
            "config": {"filter": "trigger.body.env == 'prod'"},
        },
        {"id": "ok", "type": "control.condition", "config": {"expression": "trigger.body.status == 'success'"}},
        {
            "id": "enrich",
            "type": "http.request",
            "config": {"url": "{{ env.API }}/repos/{{ trigger.body.repo }}", "credential": "github"},
        },
        {
            "id": "notify",
            "type": "http.request",
            "name": "Tell the team",
            "config": {
                "method": "POST",
                "url": "{{ env.CHAT }}",
                "json": {"text": "{{ steps.enrich.body.name }} ok"},
                "headers": {"Authorization": "Bearer {{ credentials.chat.token }}"},
            },
            "retry": {"attempts": 3, "delay_seconds": 1, "backoff": "exponential"},
            "timeout_seconds": 10,
        },
    ],
    "edges": [
        {"id": "e1", "source": "hook", "target": "ok"},
        {"id": "e2", "source": "ok", "sourceHandle": "true", "target": "enrich"},
        {"id": "e3", "source": "enrich", "target": "notify"},
    ],
}


def base_graph() -> dict[str, Any]:
    """A fresh copy of a small valid graph."""
    return copy.deepcopy(BASE)


def node(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in graph["nodes"] if n["id"] == node_id)


def loop_graph() -> dict[str, Any]:
    """The base graph plus a foreach loop over enrich's items with a two-node body."""
    graph = base_graph()
    graph["nodes"] += [
        {"id": "each", "type": "control.loop", "config": {"items": "{{ steps.enrich.body.items }}"}},
        {"id": "fetch", "type": "http.request", "parentId": "each", "config": {"url": "{{ loop.item.url }}"}},
        {"id": "keep", "type": "data.transform", "parentId": "each", "config": {"value": "{{ steps.fetch.body }}"}},
        {"id": "after", "type": "data.transform", "config": {"value": "{{ steps.each }}"}},
    ]
    graph["edges"] += [
        {"id": "l1", "source": "enrich", "target": "each"},
        {"id": "l2", "source": "fetch", "target": "keep"},
        {"id": "l3", "source": "each", "target": "after"},
    ]
    return graph
