"""``gorax import n8n FILE``: the graph to a file or stdout, the report printed, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.flows.importers.conftest import N8N_FIXTURES
from translator import validate_graph


def _gorax(*args: str) -> subprocess.CompletedProcess[str]:
    gorax = str(Path(sys.executable).parent / "gorax")
    return subprocess.run([gorax, *args], capture_output=True, text=True, timeout=120)


def test_import_writes_the_graph_and_prints_the_report(tmp_path: Path) -> None:
    out = tmp_path / "loop.json"
    done = _gorax("import", "n8n", str(N8N_FIXTURES / "AwsS3.file.upload.V2.workflow.json"), "-o", str(out))
    assert done.returncode == 0, done.stderr  # placeholders are findings, not failures
    graph = json.loads(out.read_text())
    assert validate_graph(graph) == [] and graph["name"] == "Test S3 upload"
    assert "2 placeholders" in done.stdout
    assert "placeholder  move_binary_data: n8n-nodes-base.moveBinaryData" in done.stdout
    assert "needs credential 'aws_account' of type aws-credentials" in done.stdout
    validated = _gorax("validate", str(out))
    assert validated.returncode == 0, validated.stdout


def test_import_to_stdout_with_a_name_and_json_report() -> None:
    done = _gorax(
        "import", "n8n", str(N8N_FIXTURES / "Two_schedule_triggers.json"), "--workflow-name", "Nightly", "--json-report"
    )
    assert done.returncode == 0, done.stderr
    graph = json.loads(done.stdout)
    assert graph["name"] == "Nightly"
    report = json.loads(done.stderr)
    assert report["expressions"][0]["path"] == "config.value.prevNode"


def test_unnamed_n8n_file_takes_the_file_name(tmp_path: Path) -> None:
    done = _gorax("import", "n8n", str(N8N_FIXTURES / "Workflow_loop.json"))
    assert done.returncode == 0 and json.loads(done.stdout)["name"] == "Workflow_loop"


def test_unreadable_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    missing = _gorax("import", "n8n", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"nodes": [')
    bad_json = _gorax("import", "n8n", str(broken))
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    broken.write_text('{"nodes": [{"name": "A"}]}')
    not_n8n = _gorax("import", "n8n", str(broken))
    assert not_n8n.returncode == 2 and "nodes[0].type" in not_n8n.stderr
    assert not_n8n.stdout == ""
