"""The draft document layout in Python: lossless, minimal, and convergent like the editor's."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from pycrdt import Doc

from api.collab.graphdoc import apply_graph, doc_to_graph, edge_keys, is_initialized

# The repository's copies of the shared examples (a clone outside the workspace has no ../shared).
EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
assert EXAMPLES, "tests/examples holds the shared example graphs"

SAMPLE = {
    "format": "gorax/graph@1",
    "name": "sample",
    "settings": {"timeout_seconds": 3600, "ratio": 0.5},
    "x_extra": {"kept": True},
    "nodes": [
        {"id": "hook", "type": "trigger.webhook", "position": {"x": 0, "y": 0}, "config": {"signature": {"secret": "s"}}},
        {"id": "ok", "type": "control.condition", "version": 1, "config": {"expression": "x"}, "on_error": "route",
         "disabled": False},
        {"id": "a", "type": "http.request", "parentId": "ok", "config": {"n": 1, "flag": True, "list": [1, 2.5]},
         "retry": {"attempts": 3}, "timeout_seconds": 30},
        {"id": "odd", "type": "data.transform", "config": ["not", "an", "object"]},
        {"id": "bare", "type": "data.transform"},
    ],
    "edges": [
        {"id": "e1", "source": "hook", "target": "ok"},
        {"source": "ok", "sourceHandle": "true", "target": "a"},
        {"source": "ok", "sourceHandle": "true", "target": "a"},
        {"source": "ok", "target": "bare", "label": "extra"},
    ],
}


def _through_update(graph: dict) -> dict:
    doc = Doc()
    apply_graph(doc, graph)
    other = Doc()
    other.apply_update(doc.get_update())
    return doc_to_graph(other)


def test_round_trip_keeps_every_field_in_order() -> None:
    assert _through_update(SAMPLE) == SAMPLE
    # Types survive, not only values: ints stay ints, booleans stay booleans.
    assert json.dumps(_through_update(SAMPLE), sort_keys=True) == json.dumps(SAMPLE, sort_keys=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_round_trip(path: Path) -> None:
    graph = json.loads(path.read_text())
    assert _through_update(graph) == graph


def test_only_differences_are_written() -> None:
    doc = Doc()
    apply_graph(doc, SAMPLE)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    apply_graph(doc, copy.deepcopy(SAMPLE))
    assert updates == []
    changed = copy.deepcopy(SAMPLE)
    changed["nodes"][2]["config"]["n"] = 2
    del changed["nodes"][3]
    apply_graph(doc, changed)
    assert len(updates) == 1
    assert doc_to_graph(doc) == changed


def test_two_seeds_of_the_same_graph_converge() -> None:
    a, b = Doc(), Doc()
    apply_graph(a, SAMPLE)
    apply_graph(b, SAMPLE)
    a.apply_update(b.get_update())
    b.apply_update(a.get_update())
    assert doc_to_graph(a) == doc_to_graph(b) == SAMPLE


def test_bad_graphs_are_refused_with_their_place() -> None:
    with pytest.raises(ValueError, match=r"nodes\[0\] needs a string 'id'"):
        apply_graph(Doc(), {"nodes": [{"type": "x"}], "edges": []})
    with pytest.raises(ValueError, match=r"edges\[0\] needs 'source' and 'target'"):
        apply_graph(Doc(), {"nodes": [], "edges": [{"source": "a"}]})


def test_edge_keys_match_the_editor() -> None:
    # Same keys as web/src/graph/ydoc.test.ts "keys edges without ids apart".
    assert edge_keys([{"source": "a", "target": "b"}, {"source": "a", "target": "b"},
                      {"id": "e", "source": "a", "target": "b"},
                      {"source": "a", "target": "b", "sourceHandle": "true"}]) == ["a>b", "a>b~2", "e", "a>b#true"]
    doc = Doc()
    assert not is_initialized(doc)
    apply_graph(doc, {"format": "gorax/graph@1", "nodes": [], "edges": []})
    assert is_initialized(doc)
