"""Standards every registered node type meets, and the shared examples' configs fit them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from blocks.catalog import credential_types
from tests.examples import EXAMPLES_DIR
from translator.nodetypes import NodeType, load_registry

REGISTRY = load_registry()
NODE_TYPES = REGISTRY.all()
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json")) + sorted(Path("deployments").glob("*.json"))

EXPECTED = {
    "trigger.manual",
    "trigger.webhook",
    "trigger.schedule",
    "trigger.event",
    "control.condition",
    "control.switch",
    "control.merge",
    "control.loop",
    "control.delay",
    "control.subworkflow",
    "control.output",
    "data.transform",
    "http.request",
    "human.approval",
    "slack.send_message",
}


def test_core_types_registered() -> None:
    assert EXPECTED <= {t.type for t in NODE_TYPES}


@pytest.mark.parametrize("node_type", NODE_TYPES, ids=lambda t: f"{t.type}@{t.version}")
def test_node_type_describes_itself(node_type: type[NodeType]) -> None:
    entry = node_type.describe()
    json.dumps(entry)
    assert entry["category"] and entry["description"] and entry["display_name"]
    schema = node_type.Config.model_json_schema()

    def fields(s: dict) -> None:
        for name, prop in s.get("properties", {}).items():
            assert prop.get("description"), f"{node_type.type}: field {name!r} has no description"

    fields(schema)
    for sub in schema.get("$defs", {}).values():
        fields(sub)
    with pytest.raises(ValidationError):  # unknown keys are errors
        node_type.Config.model_validate({"surely_not_a_field": 1})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_fit(path: Path) -> None:
    graph = json.loads(path.read_text())
    for node in graph["nodes"]:
        node_type = REGISTRY.get(node["type"], node.get("version"))
        assert node_type is not None, node["type"]
        node_type.Config.model_validate(node.get("config", {}))


def test_switch_and_approval_handles() -> None:
    switch = REGISTRY.get("control.switch")
    assert switch.handles_for({"cases": {"high": "value > 5", "low": "value <= 5"}}) == ("high", "low", "default")
    assert switch.handles_for({"value": "x", "cases": ["a", 2, True]}) == ("a", "2", "true", "default")
    approval = REGISTRY.get("human.approval")
    assert approval.handles_for({"options": [{"label": "Yes", "value": "yes"}]}) == ("yes",)
    assert approval.handles_for({}) == ("approved", "rejected")


@pytest.mark.parametrize(
    ("slug", "config", "needle"),
    [
        ("trigger.schedule", {"cron": "61 * * * *"}, "minute"),
        ("trigger.schedule", {"cron": "* * * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ("trigger.schedule", {}, "exactly one"),
        ("trigger.webhook", {"signature": {"scheme": "hmac-sha256"}}, "secret"),
        ("control.switch", {"cases": {"default": "true"}}, "reserved"),
        ("control.switch", {"cases": ["a"]}, "value"),
        ("control.loop", {"mode": "while"}, "condition"),
        ("control.loop", {"mode": "foreach"}, "items"),
        ("control.delay", {"duration": "5 fortnights"}, "not understood"),
        ("control.delay", {"seconds": 1, "duration": "1s"}, "exactly one"),
        ("control.subworkflow", {}, "exactly one"),
        ("http.request", {"url": "http://x", "json": {}, "body": "b"}, "at most one body"),
        (
            "human.approval",
            {"title": "t", "assignees": ["a"], "escalation": [{"after": "1h", "decide": "maybe"}]},
            "maybe",
        ),
        ("slack.send_message", {"credential": "c", "channel": "#x"}, "text"),
    ],
)
def test_bad_configs_say_what_is_wrong(slug: str, config: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        REGISTRY.get(slug).Config.model_validate(config)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "node_type", [t for t in NODE_TYPES if t.credential_types], ids=lambda t: f"{t.type}@{t.version}"
)
def test_credential_types_name_credential_blocks(node_type: type[NodeType]) -> None:
    # Node types name credential types by slug (importing the Block classes would load Prefect
    # wherever graphs are only validated); each slug must be a credential Block Gorax offers.
    offered = {t.slug for t in credential_types()}
    assert set(node_type.credential_types) <= offered, node_type.credential_types
