"""The shared examples and the graphs kept in deployments/ validate against the real node types.

A failure here names the example and every error: when the error is in a node type's Config
(flows/nodes/), the fix belongs there, not in the example.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.examples import EXAMPLES_DIR
from translator import compile_graph, validate_graph
from translator.nodetypes import load_registry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.json")) + sorted((ROOT / "deployments").glob("*.json"))


@pytest.fixture(scope="module")
def real_registry():
    return load_registry()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_with_the_real_node_types(path: Path, real_registry) -> None:
    document = json.loads(path.read_text())
    errors = validate_graph(document, registry=real_registry)
    assert not errors, f"{path} should be valid; the node types in flows/nodes/ reject it:\n" + "\n".join(
        f"  {error}" for error in errors
    )
    plan = compile_graph(document, registry=real_registry)
    all_ids = set(plan.order) | {n for body in plan.bodies.values() for n in body.order}
    assert all_ids == {n["id"] for n in document["nodes"]}


def test_examples_exist() -> None:
    assert len(EXAMPLES) >= 4


def test_deployment_notifier_plan(real_registry) -> None:
    document = json.loads((EXAMPLES_DIR / "deployment-notifier.json").read_text())
    plan = compile_graph(document, registry=real_registry)
    assert plan.order == ("hook", "succeeded", "announce", "page", "done")
    assert plan.nodes["announce"].credential_refs == {"team_slack"}
    assert plan.nodes["page"].credential_refs == {"pager"}
    assert plan.nodes["hook"].credential_refs == {"github_webhook"}  # signature.secret, declared by the type
    scope = {"trigger": {"body": {"repo": "gorax", "sha": "abc123", "environment": "production"}}}
    assert plan.nodes["announce"].render_config(scope).text == "gorax abc123 is live on production"
    assert plan.nodes["hook"].evaluate("filter", scope) is True


def test_loop_example_plan(real_registry) -> None:
    document = json.loads((EXAMPLES_DIR / "loop-over-items.json").read_text())
    plan = compile_graph(document, registry=real_registry)
    assert plan.bodies["each"].order == ("lookup", "verdict")
    assert plan.bodies["each"].last_nodes == ("verdict",)
    verdict = (
        plan.bodies["each"]
        .nodes["verdict"]
        .render_config({"loop": {"item": "1.2.3.4", "index": 0}, "steps": {"lookup": {"body": {"score": 90}}}})
    )
    assert verdict.value == {"indicator": "1.2.3.4", "malicious": True}


def test_catalogue_is_json_and_every_type_has_a_schema(real_registry) -> None:
    catalogue = real_registry.catalogue()
    json.dumps(catalogue)
    assert all(entry["config_schema"].get("type") == "object" for entry in catalogue)
