"""Where the warm worker finds a deployment's flow, and what it refuses (no server needed)."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flows.worker.loader import FlowLoadError, _import_flow, resolve_entrypoint

ROOT = Path(__file__).resolve().parents[3]


def _deployment(**fields: Any) -> Any:
    base = {"name": "wf", "entrypoint": None, "storage_document_id": None, "pull_steps": None, "path": None}
    return SimpleNamespace(**{**base, **fields})


def test_module_entrypoint_is_imported_as_a_module() -> None:
    key = resolve_entrypoint(_deployment(entrypoint="tests.flows.worker.sample_flows.quick"))
    assert key == "tests.flows.worker.sample_flows:quick"
    assert _import_flow(key, "wf").name == "quick"


def test_relative_file_resolves_in_the_working_directory_step() -> None:
    deployment = _deployment(
        entrypoint="flows/run_graph.py:run_graph",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
    )
    key = resolve_entrypoint(deployment)
    assert key == f"{ROOT / 'flows' / 'run_graph.py'}:run_graph"
    from flows.run_graph import run_graph

    # The same module object the rest of the process uses, not a second copy of the file.
    assert _import_flow(key, "wf") is run_graph


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"storage_document_id": uuid.uuid4()}, "storage block"),
        ({"pull_steps": [{"prefect.deployments.steps.git_clone": {"repository": "x"}}]}, "git_clone"),
        ({"entrypoint": "missing/flow.py:f", "path": str(ROOT)}, "not found"),
        ({"entrypoint": None}, "no entrypoint"),
    ],
)
def test_refusals_name_the_deployment_and_the_reason(fields: dict[str, Any], says: str) -> None:
    deployment = _deployment(**{"entrypoint": "flows/run_graph.py:run_graph", **fields})
    with pytest.raises(FlowLoadError) as caught:
        resolve_entrypoint(deployment)
    assert "'wf'" in str(caught.value) and says in str(caught.value)


def test_an_attribute_that_is_not_a_flow_is_refused() -> None:
    with pytest.raises(FlowLoadError, match="not a Prefect flow"):
        _import_flow("tests.flows.worker.sample_flows:asyncio", "wf")
