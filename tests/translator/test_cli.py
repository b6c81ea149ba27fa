"""`gorax validate FILE [--json]`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from api.cli import main
from tests.examples import EXAMPLES_DIR

EXAMPLE = str(EXAMPLES_DIR / "deployment-notifier.json")


def test_valid_file_exits_0_with_a_summary(capsys) -> None:
    assert main(["validate", EXAMPLE]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "valid" in out[0] and "5 nodes" in out[0]


def test_invalid_file_lists_every_error(tmp_path: Path, capsys) -> None:
    document = json.loads(Path(EXAMPLE).read_text())
    document["nodes"][1]["config"]["expression"] = "trigger.body.status =="
    document["edges"].append({"id": "bad", "source": "succeeded", "sourceHandle": "maybe", "target": "done"})
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(document))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "node 'succeeded' config.expression" in out and "[expression_syntax]" in out
    assert "edge 'bad' sourceHandle" in out and "[invalid_handle]" in out

    assert main(["validate", str(path), "--json"]) == 1
    errors = json.loads(capsys.readouterr().out)
    assert {(e["code"], e["node_id"], e["edge_id"], e["path"]) for e in errors} == {
        ("expression_syntax", "succeeded", None, "config.expression"),
        ("invalid_handle", None, "bad", "sourceHandle"),
    }


def test_unreadable_and_non_json_files(tmp_path: Path, capsys) -> None:
    path = tmp_path / "graph.json"
    path.write_text("{ not json")
    assert main(["validate", str(path)]) == 1
    assert "not valid JSON: line 1 column 3" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "missing.json"), "--json"]) == 1
    (error,) = json.loads(capsys.readouterr().out)
    assert error["code"] == "invalid_json" and "cannot read the file" in error["message"]


def test_installed_command(tmp_path: Path) -> None:
    gorax = Path(sys.executable).with_name("gorax")
    done = subprocess.run(
        [str(gorax), "validate", EXAMPLE, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and json.loads(done.stdout) == []
