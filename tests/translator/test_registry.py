"""The node type registry: versions, catalogue, discovery through the gorax.nodes entry point."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from typing import Any

import jsonschema
import pytest

import translator.nodetypes as registry_module
from tests.translator.conftest import Condition, EchoV1, EchoV2, base_graph, loop_graph
from translator import graph_json_schema
from translator.nodetypes import NodeRegistry, NodeType, RegistryError, load_registry


def test_versions_stay_registered(registry: NodeRegistry) -> None:
    assert registry.get("demo.echo") is EchoV2
    assert registry.get("demo.echo", 1) is EchoV1 and registry.get("demo.echo", 3) is None
    assert registry.versions("demo.echo") == [1, 2]
    assert registry.get("nope") is None


def test_catalogue_describes_every_type_and_version(registry: NodeRegistry) -> None:
    catalogue = registry.catalogue()
    json.dumps(catalogue)
    entry = next(e for e in catalogue if e["type"] == "control.condition")
    assert entry["outputs"] == ["true", "false"] and entry["expression_fields"] == ["expression"]
    assert entry["config_schema"]["properties"]["expression"]["description"]
    assert [e["version"] for e in catalogue if e["type"] == "demo.echo"] == [1, 2]


def test_registering_a_clash_or_an_incomplete_type_fails() -> None:
    registry = NodeRegistry()
    registry.register(Condition)
    registry.register(Condition)  # the same class again is harmless

    class Impostor(Condition):
        pass

    with pytest.raises(RegistryError, match="control.condition v1 is registered twice"):
        registry.register(Impostor)

    class Nameless(NodeType):
        type = "demo.nameless"

    with pytest.raises(RegistryError, match="does not set 'display_name'"):
        registry.register(Nameless)


def _entry_points(*values: str) -> Any:
    return lambda group: [EntryPoint(f"ep{i}", value, group) for i, value in enumerate(values)]


def test_entry_points_name_classes_or_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry_module, "entry_points", _entry_points("tests.translator.conftest:EchoV1", "flows.nodes")
    )
    loaded = load_registry()
    assert loaded.get("demo.echo") is EchoV1 and loaded.get("http.request") is not None


def test_a_broken_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "entry_points", _entry_points("gorax_missing_plugin.nodes"))
    with pytest.raises(RegistryError, match="node plugin 'ep0' \\(gorax_missing_plugin.nodes\\) failed to load"):
        load_registry()


def test_graph_json_schema_accepts_valid_documents() -> None:
    schema = graph_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for document in (base_graph(), loop_graph()):
        jsonschema.validate(document, schema)
    broken = base_graph()
    broken["nodes"][0]["on_error"] = "explode"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
