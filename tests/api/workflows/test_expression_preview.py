"""Expression preview against a past run, and the node catalogue's help fields."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api.auth.permissions import Role
from tests.api.conftest import TenantHandle
from tests.api.workflows.conftest import create, graph, publish, transform
from translator.nodetypes import ICONS, get_registry

API = "/api/v1"


def _graph() -> dict[str, Any]:
    g = graph(
        "preview",
        transform("shape", {"n": "{{ trigger.n * 2 }}", "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}]}),
        {
            "id": "done",
            "type": "control.output",
            "position": {"x": 0, "y": 200},
            "config": {"value": "{{ steps.shape.n }}"},
        },
    )
    # A node off to the side: not an ancestor of `done`, so its output is not in done's scope.
    g["nodes"].append(transform("side", {"x": 1}))
    g["edges"].append({"id": "eside", "source": "start", "target": "side"})
    return g


async def test_preview_evaluates_against_the_newest_or_a_named_run(
    run_tenant: TenantHandle, sq_other: TenantHandle
) -> None:
    async with run_tenant.client() as client:
        wid = (await create(client, _graph()))["id"]
        url = f"{API}/workflows/{wid}/expressions/preview"

        # Before any run: syntax is still checked, values need a run.
        early = (await client.post(url, json={"expression": "steps.shape.n + 1", "node_id": "done"})).json()
        assert early["ok"] is False and early["error"]["code"] == "no_run"
        bad = await client.post(url, json={"expression": "steps.shape.n +", "node_id": "done"})
        assert bad.status_code == 200 and "X-RateLimit-Limit" in bad.headers
        body = bad.json()
        assert body["ok"] is False and body["error"]["code"] == "expression_syntax"
        assert body["error"]["position"] == "steps.shape.n +".index("+")  # the parser points at the dangling +
        tpl = (await client.post(url, json={"template": "Hi {{ trigger.n ) }}", "node_id": "done"})).json()
        assert tpl["error"]["code"] == "expression_syntax"
        assert tpl["error"]["position"] == "Hi {{ trigger.n ) }}".index(")")

        await publish(client, wid)
        first = await client.post(
            f"{API}/workflows/{wid}/execute", json={"input": {"n": 21}, "wait": True, "timeout_seconds": 90}
        )
        assert first.status_code == 200 and first.json()["status"] == "completed", first.text
        second = await client.post(
            f"{API}/workflows/{wid}/execute", json={"input": {"n": 5}, "wait": True, "timeout_seconds": 90}
        )
        assert second.json()["status"] == "completed", second.text

        newest = (await client.post(url, json={"expression": "steps.shape.n + 1", "node_id": "done"})).json()
        assert newest == {
            "ok": True,
            "value": 11,
            "type": "number",
            "error": None,
            "node_id": "done",
            "field": None,
            "execution_id": second.json()["execution_id"],
        }
        named = await client.post(
            url,
            json={
                "template": "{{ steps.shape.items.map(i, i.sku) }}",
                "node_id": "done",
                "field": "value",
                "execution_id": first.json()["execution_id"],
            },
        )
        assert named.json()["value"] == ["a", "b"] and named.json()["type"] == "list"
        mixed = (await client.post(url, json={"template": "n={{ trigger.n }}", "node_id": "done"})).json()
        assert mixed["value"] == "n=5" and mixed["type"] == "string"

        # Only the node's ancestors are in scope, as when it runs.
        outside = (await client.post(url, json={"expression": "steps.side.x", "node_id": "done"})).json()
        assert outside["ok"] is False and "side" in outside["error"]["message"]
        inside = (await client.post(url, json={"expression": "steps.side.x", "node_id": "side"})).json()
        assert inside["ok"] is False  # a node does not see itself
        # An evaluation error names what is missing.
        missing = (await client.post(url, json={"expression": "steps.shape.nope", "node_id": "done"})).json()
        assert missing["ok"] is False and "nope" in missing["error"]["message"]

        # Bad requests name the problem.
        both = await client.post(url, json={"expression": "1", "template": "1", "node_id": "done"})
        assert both.status_code == 400 and "exactly one" in both.text
        ghost = await client.post(url, json={"expression": "1", "node_id": "ghost"})
        assert ghost.status_code == 400 and "ghost" in ghost.text

        # A viewer may preview; the run must be this workflow's.
        other_wid = (await create(client, graph("other", transform("t", 1))))["id"]
        foreign = await client.post(
            f"{API}/workflows/{other_wid}/expressions/preview",
            json={"expression": "1", "node_id": "t", "execution_id": first.json()["execution_id"]},
        )
        assert foreign.status_code == 404 and "not a run of workflow" in foreign.text
    async with run_tenant.client(Role.VIEWER) as viewer:
        seen = await viewer.post(url, json={"expression": "trigger.n", "node_id": "done"})
        assert seen.status_code == 200 and seen.json()["value"] == 5

    # Another tenant sees neither the workflow nor the run.
    async with sq_other.client() as client:
        theirs = await client.post(url, json={"expression": "trigger.n", "node_id": "done"})
        assert theirs.status_code == 404
        own = (await create(client, graph("mine", transform("t", 1))))["id"]
        stolen = await client.post(
            f"{API}/workflows/{own}/expressions/preview",
            json={"expression": "trigger.n", "node_id": "t", "execution_id": first.json()["execution_id"]},
        )
        assert stolen.status_code == 404


BUILT_IN = [t for t in get_registry().all() if t.__module__.startswith("flows.nodes.")]


@pytest.mark.parametrize("node_type", BUILT_IN, ids=lambda t: f"{t.type}@{t.version}")
def test_every_built_in_node_type_has_an_icon_a_description_and_a_valid_example(node_type: Any) -> None:
    entry = node_type.describe()
    assert entry["icon"] in ICONS, f"{node_type.type} has no icon from the editor's set"
    assert len(entry["description"]) > 10
    assert entry["example"], f"{node_type.type} has no example"
    node_type.Config.model_validate(entry["example"])
    assert entry["deprecated"] is None or entry["deprecated"].strip()


def test_the_editor_draws_every_icon_the_contract_names() -> None:
    source = (Path(__file__).resolve().parents[3] / "web" / "src" / "editor" / "icons.tsx").read_text()
    drawn = set(re.findall(r'^  "([a-z-]+)":', source, re.M))
    assert drawn == set(ICONS)
