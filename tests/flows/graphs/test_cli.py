"""``gorax run --local`` and its errors (the deployed path is covered by tests/api/prefect)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.cli import main

GRAPH = {
    "format": "gorax/graph@1", "name": "hello",
    "nodes": [
        {"id": "start", "type": "trigger.manual", "config": {}},
        {"id": "greet", "type": "data.transform", "name": "Greet",
         "config": {"value": {"text": "hello {{ trigger.who }} from {{ env.PLACE }}"}}},
    ],
    "edges": [{"source": "start", "target": "greet"}],
}


def test_run_local_prints_the_output_and_fails_naming_the_node(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(GRAPH))
    code = main(["run", str(path), "--local", "--input", '{"who": "ann"}', "--var", "PLACE=berlin"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == {"text": "hello ann from berlin"}

    code = main(["run", str(path), "--local", "--input", "{}", "--var", "PLACE=berlin"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "node 'greet'" in err and "trigger has no key 'who'" in err


def test_run_refuses_bad_arguments_and_invalid_graphs(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "hello.json"
    path.write_text(json.dumps(GRAPH))
    assert main(["run", str(path), "--local", "--input", "{not json"]) == 2
    assert "--input is not JSON" in capsys.readouterr().err
    assert main(["run", str(path), "--local", "--var", "NOEQUALS"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    broken = dict(GRAPH, edges=[{"source": "start", "target": "nowhere"}])
    path.write_text(json.dumps(broken))
    assert main(["deploy", str(path)]) == 1
    assert "nowhere" in capsys.readouterr().err
