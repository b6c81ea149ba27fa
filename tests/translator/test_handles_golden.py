"""Output handles computed from config: one rule in Python and TypeScript, pinned by one fixture.

``web/src/graph/handles.golden.json`` is run here against the node types and by vitest against
the editor's ``configHandles``; its catalogue excerpts must match what the API serves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from translator.nodetypes import get_registry

GOLDEN = Path(__file__).resolve().parents[2] / "web" / "src" / "graph" / "handles.golden.json"
CASES: list[dict[str, Any]] = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_handles_follow_the_golden_fixture(case: dict[str, Any]) -> None:
    node_type = get_registry().get(case["type"])
    assert node_type is not None
    entry = node_type.describe()
    assert {key: entry[key] for key in case["info"]} == case["info"], "the fixture's catalogue excerpt is stale"
    assert list(node_type.handles_for(case["config"])) == case["expected"]
