"""Template files: what a template needs is derived from its graph; a broken file names itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from api.services.templates import TemplateError, all_templates, load_template


def _write(tmp_path: Path, name: str, **overrides: Any) -> Path:
    graph = {
        "format": "gorax/graph@1",
        "name": "probe",
        "nodes": [
            {"id": "start", "type": "trigger.manual", "config": {}},
            {
                "id": "call",
                "type": "http.request",
                "config": {
                    "url": "{{ env.API_URL }}/x",
                    "headers": {"Authorization": "Token {{ credentials.vendor.token }}"},
                    "credential": "api_auth",
                },
            },
            {
                "id": "ask",
                "type": "human.approval",
                "config": {
                    "title": "ok?",
                    "assignees": ["role:admin"],
                    "channels": ["email"],
                    "email_credential": "smtp",
                },
            },
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "ask"}],
    }
    body = {
        "id": name,
        "title": "Probe",
        "description": "A probe.",
        "category": "data",
        "tags": ["probe"],
        "author": "tests",
        "license": "Apache-2.0",
        "sample_trigger": {},
        "graph": graph,
        **overrides,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return path


def test_needs_are_derived_from_the_graph(tmp_path: Path) -> None:
    template = load_template(_write(tmp_path, "probe"))
    needs = {c.name: (c.types, c.nodes) for c in template.credentials}
    assert needs == {
        "api_auth": (["http-auth", "oauth2-connection"], ["call"]),
        "vendor": ([], ["call"]),  # read in an expression: any type with a token field
        "smtp": (["smtp-server"], ["ask"]),
    }
    assert template.variables == ("API_URL",)
    assert template.trigger_node == "start"
    assert template.matches("PROBE", "data") and not template.matches("probe", "reports")
    assert not template.matches("probe missing-word", None)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": "other-name"}, "id 'other-name' must be the file name"),
        ({"category": "nope"}, "category 'nope' is not one of"),
        ({"extra": 1}, "extra"),
        ({"graph": {"format": "gorax/graph@2", "nodes": [], "edges": []}}, "graph.format must be"),
        (
            {"graph": {"format": "gorax/graph@1", "name": "x", "nodes": [{"id": "a", "type": "no.such"}], "edges": []}},
            "graph does not validate",
        ),
    ],
)
def test_a_broken_template_names_its_file_and_field(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError) as info:
        load_template(_write(tmp_path, "broken", **overrides))
    assert str(info.value).startswith("template broken.json: ") and message in str(info.value)


def test_shipped_templates_use_only_registered_node_types_and_no_later_channel_nodes() -> None:
    templates = all_templates()
    assert len(templates) >= 20
    used = {t for template in templates for t in template.node_types}
    assert not {t for t in used if t.split(".")[0] in {"sendgrid", "twilio", "ses"}}
    assert not any("sns" in t for t in used)


@pytest.mark.parametrize("template", all_templates(), ids=lambda t: t.id)
def test_a_sample_payload_fits_its_trigger_input_schema(template: Any) -> None:
    """A sample manual input is one the trigger accepts (the golden run bypasses the API's check)."""
    trigger = next(n for n in template.meta.graph["nodes"] if n["id"] == template.trigger_node)
    schema = trigger.get("config", {}).get("input_schema")
    if schema is not None:
        jsonschema.validate(template.meta.sample_trigger, schema)
    else:
        assert isinstance(template.meta.sample_trigger, dict) and template.meta.sample_trigger
